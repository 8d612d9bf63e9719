"""Publishing committed alert changes to the `alerts` topic (for notifiers and others).

Used where a change is made outside the responder stage's consume-produce loop: the web
app's queue actions and the scheduler's overdue mark. The change is committed first: the
database is the record, and the web app's event stream reads it from there. Publishing
comes after the commit; a broker that is away then costs a message, not the change, and
is logged and counted (the caller's `failures` counter) for the operator.
"""

from __future__ import annotations

import logging
import threading

from prometheus_client import Counter

from pipeline.bus import Bus, Producer
from pipeline.messages import TOPIC_ALERTS, Message

log = logging.getLogger(__name__)


class Publisher:
    """One producer per process, shared by its threads under a lock."""

    def __init__(self, bus: Bus | None, failures: Counter):
        self.bus = bus
        self.failures = failures
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def publish(self, message: Message, key: str) -> None:
        if self.bus is None:
            return
        try:
            with self._lock:
                if self._producer is None:
                    self._producer = self.bus.producer()
                self._producer.publish(TOPIC_ALERTS, message.to_json(), key.encode())
                self._producer.flush()
        except Exception:
            self.failures.inc()
            log.exception("could not publish an alert change to %s", TOPIC_ALERTS)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close()
                self._producer = None
