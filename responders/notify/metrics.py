"""Notification metrics (README "Escalation and notifications").

Attempts and outcomes are counted by the process that makes them; the age of the oldest
waiting notification is read from the database each round, so it is right after a
restart too.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

NOTIFICATIONS = Counter(
    "yuqing_notifications_total",
    "Notifications finished, by channel and outcome: sent, or failed (given up).",
    ["channel", "outcome"],
)
FAILURES = Counter(
    "yuqing_notification_failures_total",
    "Delivery attempts that failed (retried later, or the last one of a failed notification).",
    ["channel"],
)
OLDEST_PENDING = Gauge(
    "yuqing_notifications_oldest_pending_seconds",
    "Age of the oldest notification not yet delivered (0: none waiting).",
)
