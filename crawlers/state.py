"""Crawl state in the database: seen items, HTTP validators, schedule and health.

One `CrawlState` per crawl of one source. Writes happen at three moments only: the
crawl starts (`started`), a batch was acknowledged by the bus (`mark_seen`), the crawl
ends (`finished`). All SQL goes through SQLAlchemy with bound parameters.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from crawlers import settings as defaults
from pipeline.messages import now_utc
from pipeline.storage.models import CrawlHttpCache, CrawlSeen, CrawlSource
from pipeline.storage.repository import one_of, write_rows

log = logging.getLogger(__name__)

RECENT_COUNTS = 5


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


@dataclass
class Health:
    """What a finished crawl says about the source."""

    status: str  # ok, failing, blocked
    next_due_at: datetime
    blocked_reason: str | None = None


class CrawlState:
    """Crawl state of one source, read and written through `sessions`."""

    def __init__(self, sessions: sessionmaker[Session], source_id: str, kind: str):
        self.sessions = sessions
        self.source_id = source_id
        self.kind = kind
        self.row: dict[str, Any] = {}

    # --- seen ---------------------------------------------------------------------------

    def seen(self, keys: Iterable[str]) -> dict[str, str | None]:
        """The keys already published, with their fingerprints."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str | None] = {}
        table = CrawlSeen.__table__
        if not wanted:
            return found
        with self.sessions() as session:
            rows = session.execute(
                sa.select(table.c.key, table.c.fingerprint).where(
                    table.c.source_id == self.source_id, one_of(session, table.c.key, wanted)
                )
            )
            found.update({k: f for k, f in rows.all()})
        return found

    def seen_fingerprint(self, fingerprints: Iterable[str]) -> set[str]:
        """Which content fingerprints this source already published (exact duplicates
        under another URL)."""
        wanted = list(dict.fromkeys(f for f in fingerprints if f))
        table = CrawlSeen.__table__
        if not wanted:
            return set()
        with self.sessions() as session:
            rows = session.execute(
                sa.select(table.c.fingerprint).where(
                    table.c.source_id == self.source_id,
                    one_of(session, table.c.fingerprint, wanted),
                )
            )
            return set(rows.scalars().all())

    def mark_seen(self, marks: Sequence[tuple[str, str | None]]) -> None:
        """Remember (key, fingerprint) pairs: called only after the bus acknowledged."""
        if not marks:
            return
        rows = [{"source_id": self.source_id, "key": k, "fingerprint": f} for k, f in marks]
        with self.sessions.begin() as session:
            write_rows(session, CrawlSeen, rows, update=("fingerprint",), touch=("seen_at",))

    # --- HTTP validators --------------------------------------------------------------

    def validators(self, url: str) -> tuple[str | None, str | None]:
        table = CrawlHttpCache.__table__
        with self.sessions() as session:
            row = session.execute(
                sa.select(table.c.etag, table.c.last_modified).where(
                    table.c.source_id == self.source_id, table.c.url_hash == url_hash(url)
                )
            ).first()
        return (row[0], row[1]) if row else (None, None)

    def save_validators(self, found: dict[str, tuple[str | None, str | None]]) -> None:
        rows = [
            {
                "source_id": self.source_id,
                "url_hash": url_hash(url),
                "url": url,
                "etag": etag,
                "last_modified": modified,
            }
            for url, (etag, modified) in found.items()
        ]
        if rows:
            with self.sessions.begin() as session:
                write_rows(
                    session,
                    CrawlHttpCache,
                    rows,
                    update=("etag", "last_modified"),
                    touch=("updated_at",),
                )

    # --- schedule and health ----------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """The source's row as a dict (empty for a source never crawled)."""
        table = CrawlSource.__table__
        with self.sessions() as session:
            row = session.execute(
                sa.select(table).where(table.c.source_id == self.source_id)
            ).first()
        self.row = dict(row._mapping) if row else {}
        return self.row

    @property
    def cursor(self) -> dict[str, Any]:
        return dict(self.row.get("cursor") or {})

    def started(self) -> None:
        """Record the start (the stage uses it to avoid running a source twice)."""
        self.load()
        now = now_utc()
        with self.sessions.begin() as session:
            write_rows(
                session,
                CrawlSource,
                [{"source_id": self.source_id, "kind": self.kind, "last_started_at": now}],
                update=("kind", "last_started_at"),
                touch=("updated_at",),
            )
        self.row["last_started_at"] = now

    def finished(
        self,
        *,
        interval: timedelta,
        entries: int,
        fetched: bool,
        not_modified: bool,
        blocked_reason: str | None,
        error: str | None,
        cursor: dict[str, Any] | None,
    ) -> Health:
        """Store the outcome and decide health and the next due time.

        Blocked (HTTP 403/418/432, captcha or login page, or zero entries where the last
        crawls found many): the source backs off, its interval doubled per consecutive
        block up to a day. Failing (nothing could be fetched): retried at the interval.
        """
        now = now_utc()
        recent = [int(c) for c in (self.row.get("recent_counts") or [])]
        if (
            blocked_reason is None
            and fetched
            and not not_modified
            and entries == 0
            and recent
            and min(recent[-3:]) >= defaults.ZERO_ITEMS_MIN_TYPICAL
        ):
            blocked_reason = f"zero_items (recent crawls found {recent[-3:]})"
        failures = int(self.row.get("consecutive_failures") or 0)
        values: dict[str, Any] = {
            "source_id": self.source_id,
            "kind": self.kind,
            "last_finished_at": now,
            "cursor": cursor if cursor is not None else self.row.get("cursor"),
        }
        if blocked_reason:
            failures += 1
            backoff = min(
                interval.total_seconds() * 2**failures, defaults.BLOCKED_BACKOFF_MAX_SECONDS
            )
            until = now + timedelta(seconds=backoff)
            values.update(
                status="blocked",
                blocked_reason=blocked_reason,
                blocked_since=self.row.get("blocked_since") or now,
                blocked_until=until,
                next_due_at=until,
                last_error=blocked_reason,
            )
            health = Health("blocked", until, blocked_reason)
        elif not fetched:
            failures += 1
            values.update(status="failing", next_due_at=now + interval, last_error=error)
            health = Health("failing", now + interval)
        else:
            failures = 0
            if not not_modified:
                recent = [*recent, entries][-RECENT_COUNTS:]
            values.update(
                status="ok",
                last_success_at=now,
                next_due_at=now + interval,
                recent_counts=recent,
                blocked_reason=None,
                blocked_since=None,
                blocked_until=None,
                last_error=error,
            )
            health = Health("ok", now + interval)
        values["consecutive_failures"] = failures
        columns = [k for k in values if k != "source_id"]
        with self.sessions.begin() as session:
            write_rows(session, CrawlSource, [values], update=columns, touch=("updated_at",))
        self.row.update(values)
        return health


def source_rows(sessions: sessionmaker[Session]) -> dict[str, dict[str, Any]]:
    """Every source's state row, by id (for the stage's schedule and the admin pages)."""
    table = CrawlSource.__table__
    with sessions() as session:
        return {
            row.source_id: dict(row._mapping) for row in session.execute(sa.select(table)).all()
        }
