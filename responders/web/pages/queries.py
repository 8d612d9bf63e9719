"""What the pages read: filtered alert lists, a department's queue, the week's overview.

Lists use the API's own filter clauses (`alerts.alert_filters`) and the queue's
visibility rule, so the stream page, its live rows and `GET /api/alerts` agree on what
matches. The overview is a handful of grouped counts in SQL (cheap at any size); the
weekly report with its percentiles and trends is the report module's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import HTTPException
from sqlalchemy.orm import Session, selectinload
from starlette.datastructures import QueryParams

from pipeline.storage.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertLogEntry,
    CrawlSource,
)
from responders import queue
from responders.reports import figures
from responders.reports.weekly import IsoWeek
from responders.web.alerts import alert_filters
from responders.web.auth import Principal

#: Rows a list page shows at once; "更早的告警" continues before the oldest shown.
PAGE_ROWS = 100
HISTORY_ROWS = 50
FINAL_STATES = ("closed", "dismissed")


@dataclass
class Filters:
    """The stream page's filter form, as read from the query string."""

    state: str = "open"  # "open", "all" or one state
    severity: str = ""
    department: str = ""
    topic: str = ""
    sentiment: str = ""
    source: str = ""
    q: str = ""
    since: str = ""  # datetime-local values: Asia/Shanghai
    until: str = ""
    error: str | None = field(default=None, compare=False)

    @classmethod
    def of(cls, params: QueryParams) -> Filters:
        names = cls.__dataclass_fields__.keys() - {"error"}
        return cls(**{n: params.get(n, "").strip()[:200] for n in names if n in params})

    def states(self) -> list[str]:
        if self.state == "all":
            return []
        return list(OPEN_ALERT_STATES) if self.state in ("", "open") else [self.state]

    def active(self) -> bool:
        """Whether anything narrows the list beyond the default (open alerts)."""
        return any(
            getattr(self, n)
            for n in ("severity", "department", "topic", "sentiment", "source", "q")
        ) or bool(self.since or self.until or self.state not in ("", "open"))

    def clauses(self, principal: Principal) -> list[Any]:
        """WHERE clauses; HTTPException (422 bad value, 403 other department) as the API."""
        return alert_filters(
            principal,
            {
                "state": self.states() or None,
                "severity": _listed(self.severity),
                "department": _listed(self.department),
                "topic": _listed(self.topic),
                "sentiment": _listed(self.sentiment),
            },
            [self.source] if self.source else [],
            self.q or None,
            _local_time(self.since, "since"),
            _local_time(self.until, "until"),
        )


def _listed(value: str) -> list[str] | None:
    """A form's single choice as the API's list of values."""
    return [value] if value else None


def _local_time(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name}: 时间格式应为 2026-11-17T10:00") from None


def _visible(principal: Principal, statement: sa.Select[Any]) -> sa.Select[Any]:
    return queue.visible(principal.actor(), statement).options(selectinload(Alert.event))


def last_log_id(session: Session) -> int:
    """The newest audit row: a page's live stream resumes after it, so a change made
    between rendering the page and opening the stream is not lost."""
    return session.scalar(sa.select(sa.func.max(AlertLogEntry.id))) or 0


def alert_list(
    session: Session, principal: Principal, filters: Filters, limit: int = PAGE_ROWS
) -> list[Alert]:
    """Newest first; an invalid filter leaves `filters.error` set and the list empty."""
    try:
        clauses = filters.clauses(principal)
    except HTTPException as exc:
        filters.error = str(exc.detail)
        return []
    statement = _visible(principal, sa.select(Alert)).where(*clauses)
    order = (Alert.created_at.desc(), Alert.id.desc())
    return list(session.scalars(statement.order_by(*order).limit(limit)))


def matching_alert(
    session: Session, principal: Principal, filters: Filters, alert_id: str
) -> Alert | None:
    """The alert if the caller may see it and it matches the page's filters (live rows)."""
    try:
        clauses = filters.clauses(principal)
    except HTTPException:
        return None
    statement = _visible(principal, sa.select(Alert)).where(Alert.id == alert_id, *clauses)
    return session.scalars(statement).first()


# --- a department's queue ---------------------------------------------------------------


def pending_deadlines(alert: Alert) -> list[datetime]:
    """The deadlines the department still has to meet on `alert`."""
    if alert.state in FINAL_STATES:
        return []
    due = []
    if alert.acknowledged_at is None:
        due.append(alert.ack_due)
    if alert.responded_at is None:
        due.append(alert.response_due)
    if alert.press_conference_due is not None and alert.press_conference_at is None:
        due.append(alert.press_conference_due)
    return due


def time_left_key(alert: Alert) -> tuple[int, datetime]:
    """Sort key: nearest pending deadline first (overdue ones lead); nothing pending last."""
    pending = pending_deadlines(alert)
    return (0, min(pending)) if pending else (1, alert.updated_at)


def department_queue(session: Session, principal: Principal) -> list[Alert]:
    """The caller's open alerts, the one whose deadline comes first on top."""
    statement = _visible(principal, sa.select(Alert)).where(Alert.state.in_(OPEN_ALERT_STATES))
    return sorted(session.scalars(statement.limit(1000)), key=time_left_key)


def department_history(session: Session, principal: Principal) -> list[Alert]:
    """The caller's closed and dismissed alerts, latest change first."""
    statement = _visible(principal, sa.select(Alert)).where(Alert.state.in_(FINAL_STATES))
    order = (Alert.updated_at.desc(), Alert.id.desc())
    return list(session.scalars(statement.order_by(*order).limit(HISTORY_ROWS)))


def my_actions(session: Session, principal: Principal) -> list[AlertLogEntry]:
    """What the caller did lately (their own audit rows)."""
    return list(
        session.scalars(
            sa.select(AlertLogEntry)
            .where(AlertLogEntry.actor == principal.username, AlertLogEntry.alert_id.is_not(None))
            .order_by(AlertLogEntry.id.desc())
            .limit(HISTORY_ROWS)
        )
    )


# --- filter choices ---------------------------------------------------------------------


def topics(session: Session) -> list[str]:
    rows = session.scalars(
        sa.select(Alert.topic).where(Alert.topic.is_not(None)).distinct().limit(200)
    )
    return sorted(rows)


def source_ids(session: Session) -> list[str]:
    return list(session.scalars(sa.select(CrawlSource.source_id).order_by(CrawlSource.source_id)))


# --- the leader's overview --------------------------------------------------------------


def week_start(now: datetime, tz: ZoneInfo) -> datetime:
    """Monday 00:00 (local) of `now`'s week: the weekly report's week, so the overview
    and the report count the same days."""
    return IsoWeek.containing(now, tz).window(tz).start


@dataclass
class DepartmentWeek:
    """One department's line of the overview."""

    department: str
    raised: int = 0
    open: int = 0
    overdue: int = 0
    ack_met: int = 0
    ack_counted: int = 0
    response_met: int = 0
    response_counted: int = 0

    @property
    def ack_rate(self) -> float | None:
        return self.ack_met / self.ack_counted if self.ack_counted else None

    @property
    def response_rate(self) -> float | None:
        return self.response_met / self.response_counted if self.response_counted else None


def overview(session: Session, now: datetime, tz: ZoneInfo) -> list[DepartmentWeek]:
    """Per department: raised this week, on-time rates of this week's alerts (false alarms
    left out), open and overdue now; busiest first.

    The week's figures are the weekly report's own queries (`figures.report_items` and
    `figures.tallies`, as of now), so the overview and the report cannot disagree."""
    window = IsoWeek.containing(now, tz).window(tz)
    # `rejections` only feeds a count the overview does not show.
    week = figures.tallies(session, figures.report_items(window), now, rejections=1)
    lines: dict[str, DepartmentWeek] = {}
    for (dept, _), tally in week.items():
        line = lines.setdefault(dept, DepartmentWeek(dept))
        line.raised += tally.alerts
        line.ack_met += tally.ack_met
        line.ack_counted += tally.ack_counted
        line.response_met += tally.response_met
        line.response_counted += tally.response_counted
    overdue = sa.func.sum(sa.case((Alert.overdue, 1), else_=0))
    now_open = session.execute(
        sa.select(Alert.department_id, sa.func.count(), overdue)
        .where(Alert.state.in_(OPEN_ALERT_STATES))
        .group_by(Alert.department_id)
    )
    for dept, open_count, overdue_count in now_open:
        line = lines.setdefault(dept, DepartmentWeek(dept))
        line.open, line.overdue = open_count, overdue_count or 0
    return sorted(lines.values(), key=lambda d: (-d.overdue, -d.open, -d.raised, d.department))


def totals(lines: list[DepartmentWeek]) -> DepartmentWeek:
    """The district's line: the sums of the departments'."""
    total = DepartmentWeek("all")
    for line in lines:
        for name in (
            "raised",
            "open",
            "overdue",
            "ack_met",
            "ack_counted",
            "response_met",
            "response_counted",
        ):
            setattr(total, name, getattr(total, name) + getattr(line, name))
    return total


def overdue_alerts(session: Session, limit: int = 20) -> list[Alert]:
    """Open alerts marked overdue, the longest overdue first."""
    statement = (
        sa.select(Alert)
        .where(Alert.state.in_(OPEN_ALERT_STATES), Alert.overdue)
        .order_by(Alert.response_due.asc())
        .limit(limit)
    )
    return list(session.scalars(statement))
