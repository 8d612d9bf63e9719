"""Prometheus metrics shared by every stage, and the `/metrics` endpoint of a process.

Names follow Prometheus practice: `yuqing_` prefix, base units, `_total` for counters,
`_seconds` for durations; labels are low-cardinality (stage, outcome, topic).
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

STAGE_MESSAGES = Counter(
    "yuqing_stage_messages_total",
    "Messages a stage finished, by outcome (ok, retried, dlq).",
    ["stage", "outcome"],
)
STAGE_PROCESSING = Histogram(
    "yuqing_stage_processing_seconds",
    "Time a stage spent on one polled batch: process, produce, commit.",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_LAG = Gauge(
    "yuqing_consumer_lag",
    "Records published but not yet consumed by this process's consumer group member.",
    ["topic"],
)
DLQ_MESSAGES = Counter(
    "yuqing_dlq_messages_total",
    "Poison messages sent to the dead-letter topic, by the topic they came from.",
    ["topic"],
)
STAGE_TRANSIENT_ERRORS = Counter(
    "yuqing_stage_transient_errors_total",
    "Batches that failed for the environment (database, broker) and were retried.",
    ["stage"],
)
STAGE_UP = Gauge("yuqing_stage_up", "1 while the stage loop runs.", ["stage"])


def serve(port: int, addr: str = "127.0.0.1") -> None:
    """Serve `/metrics` on `addr:port` (0 disables; the host of YUQING_WEB_BIND, so the
    deployment decides exposure once). A taken port is logged, not fatal: the pipeline
    matters more than its metrics."""
    if not port:
        return
    try:
        start_http_server(port, addr=addr)
        log.info("metrics on http://%s:%d/metrics", addr, port)
    except OSError as exc:
        log.error("cannot serve metrics on port %d: %s", port, exc)
