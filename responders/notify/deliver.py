"""Delivery: take due notifications from the log, send each through its channel, record.

At least once: the claim is committed before the send and the outcome after it (see
`log`). Sends are one at a time; a slow endpoint is bounded by the channel timeouts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from pipeline.messages import now_utc
from pipeline.storage.models import Notification
from responders.notify import dingtalk, email, log, metrics, webhook, wecom
from responders.notify.base import DeliveryError, Note, Sender
from responders.notify.config import MissingSecret, NotifyFile

logger = logging.getLogger(__name__)

SENDERS: Mapping[str, Sender] = {
    "webhook": webhook.send,
    "dingtalk": dingtalk.send,
    "wecom": wecom.send,
    "email": email.send,
}


class Deliverer:
    """Sends what is due under one config; `clock` is injectable for tests."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: NotifyFile,
        *,
        clock: Callable[[], datetime] = now_utc,
        senders: Mapping[str, Sender] = SENDERS,
    ):
        self.sessions = sessions
        self.config = config
        self.clock = clock
        self.senders = senders

    def run_once(self) -> int:
        """Send every notification due now; returns how many were tried."""
        tried = 0
        while True:
            with self.sessions.begin() as session:
                batch = log.due(session, self.clock(), self.config.delivery.batch)
            tried += sum(self._attempt(note) for note in batch)
            if len(batch) < self.config.delivery.batch:
                break
        with self.sessions.begin() as session:
            oldest = log.oldest_pending(session)
        metrics.OLDEST_PENDING.set((self.clock() - oldest).total_seconds() if oldest else 0)
        return tried

    def _attempt(self, note: Notification) -> bool:
        delivery = self.config.delivery
        with self.sessions.begin() as session:
            attempt_id = log.claim(session, note, self.clock(), delivery.lease)
        if attempt_id is None:
            return False  # another notifier took it
        attempts = note.attempts + 1
        try:
            detail = self._send(note)
        except DeliveryError as exc:
            retry = exc.retry and attempts < delivery.max_attempts
            now = self.clock()
            with self.sessions.begin() as session:
                outcome = log.record_error(
                    session,
                    note.id,
                    attempt_id,
                    now,
                    exc.reason,
                    retry_at=now + delivery.backoff(attempts) if retry else None,
                )
            metrics.FAILURES.labels(note.channel).inc()
            if outcome == "failed":
                metrics.NOTIFICATIONS.labels(note.channel, "failed").inc()
            logger.warning(
                "notification %s to %s, attempt %d: %s (%s)",
                note.idempotency_key,
                note.target,
                attempts,
                exc.reason,
                "will retry" if retry else "giving up",
            )
            return True
        with self.sessions.begin() as session:
            log.record_sent(session, note.id, attempt_id, self.clock(), detail)
        metrics.NOTIFICATIONS.labels(note.channel, "sent").inc()
        logger.info("notification %s sent to %s", note.idempotency_key, note.target)
        return True

    def _send(self, note: Notification) -> str:
        """One send; every failure becomes a DeliveryError saying whether to retry."""
        target = self.config.targets.get(note.target)
        if target is None:
            raise DeliveryError(f"target {note.target!r} is not in notify.yaml", retry=False)
        sender = self.senders[target.channel]
        try:
            return sender(Note(note.idempotency_key, note.kind, note.payload), target, self.config)
        except DeliveryError:
            raise
        except MissingSecret as exc:  # set it and restart: the retries pick it up
            raise DeliveryError(str(exc), retry=True) from None
        except Exception as exc:  # a bug in one channel must not stop the others
            logger.exception("notification %s: unexpected error", note.idempotency_key)
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retry=True) from None
