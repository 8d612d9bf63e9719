"""The notification log: the `notifications` outbox and its `notification_attempts`.

Life of a notification: written `pending` (idempotently, by key) → claimed for an attempt
(`attempts` + 1, `next_attempt_at` pushed out by the lease, an attempt row opened) →
`sent`, or back to pending with a backoff, or `failed` after the last attempt or on an
answer that will not change. The claim commits before the send, so:

- a process killed mid-send leaves the claim and an open attempt; once the lease runs out
  the notification is due again and goes out once more, with the same key;
- a confirmed send is committed as `sent` and never repeated;
- two notifiers cannot both claim one attempt: the claim is a compare-and-set on
  `attempts`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipeline.storage.models import Notification, NotificationAttempt
from pipeline.storage.repository import write_rows

MAX_KEY = 255


def make_key(*parts: str) -> str:
    """An idempotency key from what the notification is about and where it goes;
    readable when it fits the column, else a hash of it."""
    key = ":".join(parts)
    if len(key) <= MAX_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def enqueue(session: Session, rows: Iterable[Mapping[str, Any]], now: datetime) -> int:
    """Write notifications (columns of `notifications`), due `now`, skipping keys already
    written; returns how many are new. Runs in the caller's transaction."""
    timed = [{**row, "created_at": now, "next_attempt_at": now} for row in rows]
    return write_rows(session, Notification, timed, conflict=("idempotency_key",))


def due(session: Session, now: datetime, limit: int) -> list[Notification]:
    """Pending notifications whose time has come, oldest first."""
    return list(
        session.scalars(
            sa.select(Notification)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
        )
    )


def claim(session: Session, note: Notification, now: datetime, lease: timedelta) -> int | None:
    """Take `note` for one attempt; the attempt's id, or None if another process took it
    (or it is no longer pending). Commit before sending."""
    taken = session.execute(
        sa.update(Notification)
        .where(
            Notification.id == note.id,
            Notification.status == "pending",
            Notification.attempts == note.attempts,
        )
        .values(attempts=note.attempts + 1, next_attempt_at=now + lease)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if taken != 1:
        return None
    attempt = NotificationAttempt(
        notification_id=note.id, attempt=note.attempts + 1, started_at=now
    )
    session.add(attempt)
    session.flush()
    return attempt.id


def _finish(session: Session, attempt_id: int, now: datetime, outcome: str, detail: str) -> None:
    session.execute(
        sa.update(NotificationAttempt)
        .where(NotificationAttempt.id == attempt_id)
        .values(finished_at=now, outcome=outcome, detail=detail[:2000])
    )


def record_sent(
    session: Session, note_id: int, attempt_id: int, now: datetime, detail: str
) -> None:
    session.execute(
        sa.update(Notification)
        .where(Notification.id == note_id)
        .values(status="sent", sent_at=now, last_error=None)
    )
    _finish(session, attempt_id, now, "sent", detail)


def record_error(
    session: Session,
    note_id: int,
    attempt_id: int,
    now: datetime,
    error: str,
    *,
    retry_at: datetime | None,
) -> str:
    """Record a failed attempt: due again at `retry_at`, or `failed` for good when it is
    None. Returns the attempt's outcome, `error` or `failed`."""
    outcome = "error" if retry_at is not None else "failed"
    values: dict[str, Any] = {"last_error": error[:2000]}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    session.execute(sa.update(Notification).where(Notification.id == note_id).values(**values))
    _finish(session, attempt_id, now, outcome, error)
    return outcome


def oldest_pending(session: Session) -> datetime | None:
    """When the oldest notification still waiting to go out was written."""
    return session.scalar(
        sa.select(sa.func.min(Notification.created_at)).where(Notification.status == "pending")
    )
