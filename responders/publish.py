"""Publishing alert changes made through the API to the `alerts` topic (for notifiers).

The change is committed first: the database is the record, and the event stream of the
web app reads it from there. Publishing comes after the commit; a broker that is away
then costs a notification, not the change, and is logged and counted
(`yuqing_web_publish_failures_total`) for the operator.
"""

from __future__ import annotations

import logging
import threading

from pipeline.bus import Bus, Producer
from pipeline.messages import TOPIC_ALERTS, Message
from responders.web import metrics

log = logging.getLogger(__name__)


class Publisher:
    """One producer for the whole app, shared by the request threads under a lock."""

    def __init__(self, bus: Bus | None):
        self.bus = bus
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
            metrics.PUBLISH_FAILURES.inc()
            log.exception("could not publish an alert change to %s", TOPIC_ALERTS)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close()
                self._producer = None
