"""Every figure of the weekly report, computed in the database with grouped queries.

A week may hold 100,000 alerts, so nothing here loads alerts one by one: counts and
deadline tallies are one `GROUP BY`, percentiles come from window functions that return
only the rows around each percentile, and the effect of responses is aggregated per
department in SQL. The same statements run on SQLite and PostgreSQL; the only dialect
difference, the length of a time span in seconds, is one compiled construct.

Live alerts and imported history (`yuqing import history`) are read through one union,
`report_items`, so every figure has a single path whatever the item's origin.

Definitions (printed in the report's appendix), all "as known at `as_of`":
- a deadline counts once it has passed or was met; it was met when the ack (response)
  came at or before it; rate = met / counted, None when nothing counts;
- times are calendar seconds from when the item was raised (the start of its current
  round) to its ack or first response; percentiles by linear interpolation;
- overdue: the response deadline passed without a response by then;
- dismissed alerts (false alarms) count nowhere.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from pipeline.storage.models import Alert, Classification, Event, EventPost, HistoryItem
from pipeline.storage.types import UTCDateTime

PERCENTILES = (Fraction(1, 2), Fraction(9, 10))
UNCLASSIFIED = "未分类"


# --- time spans in SQL ------------------------------------------------------------------


class SecondsBetween(FunctionElement[float]):
    """`later - earlier` in seconds (float)."""

    type = sa.Float()
    name = "seconds_between"
    inherit_cache = True


class DaysBetween(FunctionElement[int]):
    """Whole days from `earlier` to `later` (later ≥ earlier): the day of the week."""

    type = sa.Integer()
    name = "days_between"
    inherit_cache = True


def _operands(element: FunctionElement[Any], compiler: SQLCompiler, kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(SecondsBetween)
def _seconds_default(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _operands(element, compiler, kw)
    return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION)"


@compiles(SecondsBetween, "sqlite")
def _seconds_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _operands(element, compiler, kw)
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


@compiles(DaysBetween)
def _days_default(element: DaysBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _operands(element, compiler, kw)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400) AS INTEGER)"


@compiles(DaysBetween, "sqlite")
def _days_sqlite(element: DaysBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _operands(element, compiler, kw)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def at(value: datetime) -> sa.BindParameter[datetime]:
    """A time as a bound parameter stored the way columns are (UTC)."""
    return sa.literal(value, UTCDateTime())


# --- the items of a window --------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """[start, end): a week in the district's time zone, as aware datetimes."""

    start: datetime
    end: datetime


def report_items(window: Window) -> sa.Subquery:
    """Alerts (not dismissed) and history items raised in `window`, with the same columns."""
    live = sa.select(
        Alert.id,
        sa.literal("alert").label("origin"),
        Alert.department_id,
        Alert.severity,
        Alert.created_at,
        sa.func.coalesce(Alert.raised_at, Alert.created_at).label("raised_at"),
        Alert.ack_due,
        Alert.response_due,
        Alert.acknowledged_at,
        Alert.responded_at,
        Alert.closed_at,
        Alert.event_id,
        Alert.topic,
        Alert.sentiment,
        Alert.transfer_rejections,
    ).where(
        Alert.created_at >= window.start,
        Alert.created_at < window.end,
        Alert.state != "dismissed",
    )
    past = sa.select(
        HistoryItem.id,
        sa.literal("history").label("origin"),
        HistoryItem.department_id,
        HistoryItem.severity,
        HistoryItem.created_at,
        HistoryItem.created_at.label("raised_at"),
        HistoryItem.ack_due,
        HistoryItem.response_due,
        HistoryItem.acknowledged_at,
        HistoryItem.responded_at,
        HistoryItem.closed_at,
        sa.cast(sa.null(), sa.String(64)).label("event_id"),
        sa.cast(sa.null(), sa.String(128)).label("topic"),
        sa.cast(sa.null(), sa.String(16)).label("sentiment"),
        sa.literal(0).label("transfer_rejections"),
    ).where(HistoryItem.created_at >= window.start, HistoryItem.created_at < window.end)
    return sa.union_all(live, past).subquery("items")


# --- deadline tallies -------------------------------------------------------------------


@dataclass
class Tally:
    """Counts behind the rates of one group; tallies add up, so one grouped query (per
    department and severity) gives the department, severity and overall figures."""

    alerts: int = 0
    ack_met: int = 0
    ack_counted: int = 0
    response_met: int = 0
    response_counted: int = 0
    overdue: int = 0
    rejected: int = 0  # alerts whose transfer was rejected at least the configured times

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def ack_on_time_rate(self) -> float | None:
        return rate(self.ack_met, self.ack_counted)

    @property
    def response_on_time_rate(self) -> float | None:
        return rate(self.response_met, self.response_counted)


def rate(met: int, counted: int) -> float | None:
    return round(met / counted, 4) if counted else None


def total(tallies: Iterable[Tally]) -> Tally:
    return sum(tallies, Tally())


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def tallies(
    session: Session, items: sa.Subquery, as_of: datetime, rejections: int
) -> dict[tuple[str, str], Tally]:
    """(department, severity) → Tally."""
    c = items.c
    now = at(as_of)
    ack_met = sa.and_(c.acknowledged_at <= c.ack_due, c.acknowledged_at <= now)
    response_met = sa.and_(c.responded_at <= c.response_due, c.responded_at <= now)
    rows = session.execute(
        sa.select(
            c.department_id,
            c.severity,
            sa.func.count(),
            _count(ack_met),
            _count(sa.or_(ack_met, c.ack_due <= now)),
            _count(response_met),
            _count(sa.or_(response_met, c.response_due <= now)),
            _count(sa.and_(c.response_due <= now, sa.not_(sa.func.coalesce(response_met, False)))),
            _count(c.transfer_rejections >= rejections),
        ).group_by(c.department_id, c.severity)
    )
    return {(row[0], row[1]): Tally(*(int(v) for v in row[2:])) for row in rows}


# --- percentiles ------------------------------------------------------------------------


def percentiles(
    session: Session, values: sa.Select[Any], ps: Sequence[Fraction] = PERCENTILES
) -> dict[Any, dict[Fraction, float]]:
    """Percentiles by linear interpolation (PostgreSQL's `percentile_cont`, which SQLite
    lacks) of `values` (columns `grp`, `v`) per group. Window functions number the sorted
    values, and only the two rows around each percentile leave the database."""
    src = values.subquery()
    ranked = sa.select(
        src.c.grp,
        src.c.v,
        (sa.func.row_number().over(partition_by=src.c.grp, order_by=src.c.v) - 1).label("i"),
        sa.func.count().over(partition_by=src.c.grp).label("n"),
    ).subquery()
    wanted = []
    for p in ps:
        low = ((ranked.c.n - 1) * p.numerator) // p.denominator
        wanted += [ranked.c.i == low, ranked.c.i == low + 1]
    by_group: dict[Any, dict[int, float]] = defaultdict(dict)
    sizes: dict[Any, int] = {}
    for grp, v, i, n in session.execute(
        sa.select(ranked.c.grp, ranked.c.v, ranked.c.i, ranked.c.n).where(sa.or_(*wanted))
    ):
        by_group[grp][int(i)] = float(v)
        sizes[grp] = int(n)
    return {grp: {p: _interpolate(by_group[grp], sizes[grp], p) for p in ps} for grp in sizes}


def _interpolate(sorted_values: dict[int, float], n: int, p: Fraction) -> float:
    h = (n - 1) * p
    low = int(h)
    below = sorted_values[low]
    above = sorted_values.get(low + 1, below)
    return below + (above - below) * float(h - low)


def durations(
    items: sa.Subquery, until: str, as_of: datetime, by_department: bool
) -> sa.Select[Any]:
    """Seconds from raised to `until` (`acknowledged_at` or `responded_at`) of the items
    where it happened by `as_of`, grouped by department or all together."""
    c = items.c
    end = c[until]
    grp = c.department_id if by_department else sa.literal("all")
    return sa.select(grp.label("grp"), SecondsBetween(end, c.raised_at).label("v")).where(
        end.is_not(None), end <= at(as_of)
    )


# --- trends -----------------------------------------------------------------------------


def by_topic(session: Session, items: sa.Subquery) -> dict[str, int]:
    topic = sa.func.coalesce(items.c.topic, UNCLASSIFIED)
    rows = session.execute(sa.select(topic, sa.func.count()).group_by(topic))
    return {t: n for t, n in rows}


def sentiment_by_day(
    session: Session, items: sa.Subquery, window: Window
) -> dict[tuple[int, str], int]:
    """(day of the week 0–6, sentiment or None) → alerts."""
    day = DaysBetween(items.c.created_at, at(window.start))
    rows = session.execute(
        sa.select(day, items.c.sentiment, sa.func.count()).group_by(day, items.c.sentiment)
    )
    return {(int(d), s): n for d, s, n in rows}


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    id: str
    title: str
    topic: str | None
    heat: float
    post_count: int
    first_seen: datetime
    alerts: int


def top_events(session: Session, items: sa.Subquery, limit: int) -> list[EventRow]:
    """The hottest events with items in the window."""
    if limit <= 0:
        return []
    rows = session.execute(
        sa.select(
            Event.id,
            Event.title,
            Event.topic,
            Event.heat,
            Event.post_count,
            Event.first_seen,
            sa.func.count(items.c.id),
        )
        .join(items, items.c.event_id == Event.id)
        .group_by(
            Event.id, Event.title, Event.topic, Event.heat, Event.post_count, Event.first_seen
        )
        .order_by(Event.heat.desc(), sa.func.count(items.c.id).desc(), Event.id)
        .limit(limit)
    )
    return [EventRow(*row) for row in rows]


def event_items(session: Session, items: sa.Subquery, event_ids: list[str]) -> list[Any]:
    """The items of these events, for their timelines."""
    c = items.c
    return list(
        session.execute(
            sa.select(
                c.event_id,
                c.department_id,
                c.severity,
                c.created_at,
                c.acknowledged_at,
                c.responded_at,
                c.closed_at,
            )
            .where(c.event_id.in_(event_ids))
            .order_by(c.created_at, c.id)
        )
    )


def event_posts_by_day(
    session: Session, event_ids: list[str], window: Window
) -> dict[tuple[str, int], int]:
    """(event, day of the week) → posts."""
    day = DaysBetween(EventPost.at, at(window.start))
    rows = session.execute(
        sa.select(EventPost.event_id, day, sa.func.count())
        .where(
            EventPost.event_id.in_(event_ids),
            EventPost.at >= window.start,
            EventPost.at < window.end,
        )
        .group_by(EventPost.event_id, day)
    )
    return {(e, int(d)): n for e, d, n in rows}


# --- effect of responses ----------------------------------------------------------------


@dataclass
class Effect:
    """Negative posts on the events in the hours before and after their responses."""

    responses: int = 0
    before: int = 0
    after: int = 0
    fell: int = 0  # responses after which negative posts fell

    def __add__(self, other: Effect) -> Effect:
        return Effect(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def change(self) -> float | None:
        """Relative change of negative posts, after vs before (None without a before)."""
        return round((self.after - self.before) / self.before, 4) if self.before else None


def response_effect(
    session: Session,
    items: sa.Subquery,
    as_of: datetime,
    hours: float,
    group: str,
    event_ids: Sequence[str] | None = None,
) -> dict[str, Effect]:
    """Per `group` (`department_id` or `event_id`): responses whose after-window has
    closed by `as_of`, with the negative posts (current classification) of their event in
    the `hours` before and after the first response; only of `event_ids` if given."""
    span = hours * 3600
    c = items.c
    offset = SecondsBetween(EventPost.at, c.responded_at)
    newest = (
        sa.select(Classification.sentiment)
        .where(Classification.post_id == EventPost.post_id)
        .order_by(Classification.classified_at.desc(), Classification.model_version.desc())
        .limit(1)
        .scalar_subquery()
    )
    negative = newest == "negative"
    per_response = (
        sa.select(
            c[group].label("grp"),
            _count(sa.and_(offset < 0, negative)).label("before"),
            _count(sa.and_(offset >= 0, negative)).label("after"),
        )
        .select_from(items)
        .outerjoin(
            EventPost,
            sa.and_(EventPost.event_id == c.event_id, offset >= -span, offset < span),
        )
        .where(
            c.event_id.is_not(None),
            c.responded_at.is_not(None),
            c.responded_at <= at(as_of - timedelta(hours=hours)),
        )
        .group_by(c.id, c[group])
    )
    if event_ids is not None:
        per_response = per_response.where(c.event_id.in_(event_ids))
    per_response = per_response.subquery()
    rows = session.execute(
        sa.select(
            per_response.c.grp,
            sa.func.count(),
            sa.func.sum(per_response.c.before),
            sa.func.sum(per_response.c.after),
            _count(per_response.c.after < per_response.c.before),
        ).group_by(per_response.c.grp)
    )
    return {grp: Effect(*(int(v or 0) for v in values)) for grp, *values in rows}
