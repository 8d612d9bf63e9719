"""The `notifier` stage: alert changes from the `alerts` topic into the notification log,
and everything due in the log (escalations from the scheduler too) out to its targets.

Two loops in one process. The consumer writes the notifications of each alert change
before its offset is committed (a replay writes nothing new: keys), then wakes the
delivery thread, which also polls the log every `delivery.poll_every` for the
scheduler's rows and for retries. The log is the hand-over between them, so the
scheduler needs no topic of its own and a notification waits in one place only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from pipeline.messages import TOPIC_ALERTS, Alert, now_utc
from pipeline.runner import ConsumerStage, Item, Outgoing, StageContext, StopFlag, run_periodic
from responders.notify import log
from responders.notify.config import load_notify
from responders.notify.deliver import Deliverer
from responders.notify.dispatch import Dispatcher
from responders.notify.message import AlertFacts, Labels

logger = logging.getLogger(__name__)


class NotifierStage(ConsumerStage[Alert]):
    name = "notifier"
    topics = (TOPIC_ALERTS,)
    message_type = Alert

    def __init__(self, ctx: StageContext):
        super().__init__(ctx)
        self.config = load_notify(ctx.settings)
        self.dispatcher = Dispatcher(self.config, Labels.load(ctx.settings))
        self.deliverer = Deliverer(ctx.sessions, self.config)
        self._wake = threading.Event()
        self._failure: BaseException | None = None
        for name in self.config.missing_secrets():
            logger.error("notifier: %s is not set; its target cannot be reached", name)

    def handle(self, items: Sequence[Item[Alert]]) -> list[Outgoing]:
        rows = [
            row
            for item in items
            for row in self.dispatcher.rows(
                item.message.change,
                AlertFacts.of_message(item.message),
                f"alert:{item.message.change_id}",
            )
        ]
        if rows:
            with self.ctx.sessions.begin() as session:
                log.enqueue(session, rows, now_utc())
            self._wake.set()
        return []

    def run(self, stop: StopFlag) -> None:
        thread = threading.Thread(target=self._deliver, args=(stop,), name="notifier-delivery")
        thread.start()
        try:
            super().run(stop)
        finally:
            stop.set()
            self._wake.set()
            thread.join()
        if self._failure is not None:
            raise RuntimeError("notifier: delivery stopped") from self._failure

    def _deliver(self, stop: StopFlag) -> None:
        """The delivery loop; an unexpected error stops the whole stage (and so restarts
        it under the supervisor) rather than leaving it consuming without delivering."""
        try:
            run_periodic(
                "notifier-delivery",
                self.deliverer.run_once,
                self.config.delivery.poll_every.total_seconds(),
                stop,
                self._wake,
            )
        except BaseException as exc:
            logger.exception("notifier: delivery failed")
            self._failure = exc
            stop.set()
