"""Alert metrics: open and overdue alerts (read from the database when Prometheus
scrapes, so every process reports the same truth whoever changed the row), and the time
to acknowledge and to respond (observed by the process that records the ack or response).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from pipeline.storage import models

log = logging.getLogger(__name__)

#: Seconds: 1 min … 2 weeks, around the SLA's 30 min, 2 h, 5 h, 24 h, 48 h, 5 working days.
TIME_BUCKETS = (
    60,
    300,
    900,
    1800,
    3600,
    7200,
    18000,
    43200,
    86400,
    172800,
    259200,
    432000,
    604800,
    1209600,
)

TIME_TO_ACK = Histogram(
    "yuqing_time_to_ack_seconds",
    "From an alert being raised (or reopened) to its acknowledgement, by severity.",
    ["severity"],
    buckets=TIME_BUCKETS,
)
TIME_TO_RESPOND = Histogram(
    "yuqing_time_to_respond_seconds",
    "From an alert being raised (or reopened) to its first response, by severity.",
    ["severity"],
    buckets=TIME_BUCKETS,
)


class AlertGauges(Collector):
    """`yuqing_alerts_open{department,severity}` and `yuqing_alerts_overdue{department}`,
    counted in the database at scrape time (at most every `min_interval` seconds; a
    failed query keeps the last figures rather than breaking the scrape)."""

    def __init__(self, sessions: Callable[[], Any], min_interval: float = 10.0) -> None:
        self.sessions = sessions
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._open: list[tuple[str, str, int]] = []
        self._overdue: list[tuple[str, int]] = []

    def refresh(self) -> None:
        alert = models.Alert
        is_open = alert.state.in_(models.OPEN_ALERT_STATES)
        with self.sessions() as session:
            self._open = [
                (d, s, n)
                for d, s, n in session.execute(
                    sa.select(alert.department_id, alert.severity, sa.func.count())
                    .where(is_open)
                    .group_by(alert.department_id, alert.severity)
                )
            ]
            self._overdue = [
                (d, n)
                for d, n in session.execute(
                    sa.select(alert.department_id, sa.func.count())
                    .where(is_open, alert.overdue.is_(True))
                    .group_by(alert.department_id)
                )
            ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._at >= self.min_interval:
                try:
                    self.refresh()
                    self._at = time.monotonic()
                except Exception:  # metrics must not break the scrape
                    log.warning("alert gauges: database query failed", exc_info=True)
            opened = GaugeMetricFamily(
                "yuqing_alerts_open",
                "Open alerts by department and severity.",
                labels=["department", "severity"],
            )
            for department, severity, count in self._open:
                opened.add_metric([department, severity], count)
            overdue = GaugeMetricFamily(
                "yuqing_alerts_overdue",
                "Open alerts past their response deadline.",
                labels=["department"],
            )
            for department, count in self._overdue:
                overdue.add_metric([department], count)
        yield opened
        yield overdue


_registered: AlertGauges | None = None


def register_alert_gauges(
    sessions: Callable[[], Any], registry: CollectorRegistry = REGISTRY
) -> AlertGauges:
    """Register the gauges once per process (the responder stage and the web app call
    this; a second call returns the first collector)."""
    global _registered
    if _registered is None:
        _registered = AlertGauges(sessions)
        registry.register(_registered)
    return _registered
