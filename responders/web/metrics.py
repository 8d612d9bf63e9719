"""Prometheus metrics of the web app (served on its own `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "yuqing_web_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "yuqing_web_request_seconds",
    "Time to answer an HTTP request (the event stream excluded), by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LOGINS = Counter(
    "yuqing_web_logins_total", "Login attempts by outcome (ok, failed, limited).", ["outcome"]
)
CSRF_REJECTED = Counter(
    "yuqing_web_csrf_rejected_total", "Unsafe requests of cookie sessions without CSRF token."
)
STREAM_CLIENTS = Gauge("yuqing_web_stream_clients", "Open /api/stream connections.")
PUBLISH_FAILURES = Counter(
    "yuqing_web_publish_failures_total",
    "Alert changes committed but not published to the `alerts` topic.",
)
