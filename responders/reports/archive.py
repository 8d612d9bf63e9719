"""The leaders' archive of weekly reports, and the Monday 08:00 generation.

A report is kept as it was generated (table `reports`): what the leaders read on Monday
stays the same even when a late response changes the figures afterwards; a report of a
week nobody archived is generated on demand.

The scheduler stage owns the clock; this module gives it `WeeklyReportHook`, whose
`tick()` is cheap when nothing is due (one indexed SELECT) and can be called from any
periodic loop:

    hook = WeeklyReportHook.from_settings(settings, sessions)   # once, at start
    hook.tick()                                                 # every scheduler tick

`generate_due_reports` is idempotent: the unique (kind, period, format) key means two
schedulers, a restart or a repeated tick store each report once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from pipeline.settings import Settings
from pipeline.storage.models import Report
from pipeline.storage.repository import write_rows
from pipeline.storage.types import utcnow
from responders.reports.config import ReportOptions
from responders.reports.render import render
from responders.reports.weekly import IsoWeek, build_weekly

log = logging.getLogger(__name__)

WEEKLY = "weekly"


def due_week(now: datetime, options: ReportOptions) -> IsoWeek:
    """The latest week whose scheduled generation time (Monday 08:00 of the week after,
    by default) has passed at `now`."""
    schedule = options.config.schedule
    this_week = IsoWeek.containing(now, options.tz)
    day = this_week.monday() + timedelta(days=schedule.weekday - 1)
    scheduled = datetime.combine(day, schedule.at, options.tz)
    last = this_week.previous()
    return last if now >= scheduled else last.previous()


def generate_due_reports(
    session: Session, now: datetime, options: ReportOptions
) -> list[tuple[str, str]]:
    """Generate and store the formats of the due week's report not archived yet; returns
    the (week, format) pairs stored. Uses the session's transaction; the caller commits."""
    week = due_week(now, options)
    have = set(
        session.scalars(
            sa.select(Report.format).where(Report.kind == WEEKLY, Report.period == str(week))
        )
    )
    missing = [f for f in options.config.archive_formats if f not in have]
    if not missing:
        return []
    report = build_weekly(session, week, options, as_of=now)
    rows = [
        {
            "kind": WEEKLY,
            "period": str(week),
            "format": fmt,
            "generated_at": now,
            "content": render(report, fmt),
        }
        for fmt in missing
    ]
    write_rows(session, Report, rows, conflict=("kind", "period", "format"))
    log.info("weekly report %s archived (%s)", week, ", ".join(missing))
    return [(str(week), fmt) for fmt in missing]


def archived(session: Session, week: IsoWeek, fmt: str) -> bytes | None:
    """The archived report of `week` in `fmt`, if one was generated."""
    return session.scalar(
        sa.select(Report.content).where(
            Report.kind == WEEKLY, Report.period == str(week), Report.format == fmt
        )
    )


def archive_list(session: Session) -> list[dict[str, Any]]:
    """Every archived weekly report, newest week first, without the content."""
    rows = session.execute(
        sa.select(Report.period, Report.format, Report.generated_at, sa.func.length(Report.content))
        .where(Report.kind == WEEKLY)
        .order_by(Report.period.desc(), Report.format)
    )
    return [
        {"week": week, "format": fmt, "generated_at": at, "bytes": size}
        for week, fmt, at, size in rows
    ]


class WeeklyReportHook:
    """What a periodic stage calls each tick to generate the weekly report when due."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        options: ReportOptions,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.sessions = sessions
        self.options = options
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, sessions: sessionmaker[Session]) -> WeeklyReportHook:
        return cls(sessions, ReportOptions.load(settings))

    def tick(self) -> list[tuple[str, str]]:
        with self.sessions.begin() as session:
            return generate_due_reports(session, self.clock(), self.options)
