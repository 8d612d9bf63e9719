"""The weekly response-effectiveness report (周报) of one ISO week, assembled from the
figures of `figures.py`: headline, departments ranked, who is named (通报) and why,
trends, top events, the effect of responses, and the change from the previous week.

`as_of` is when the report is made: a deadline that has not passed by then counts
nowhere yet, so Monday's report does not blame a department for a low alert whose five
working days are still running.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipeline.config import SEVERITIES
from pipeline.storage.models import SENTIMENTS, Department
from responders.reports import figures
from responders.reports.config import ReportOptions
from responders.reports.figures import PERCENTILES, Effect, EventRow, Tally, Window

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
MEDIAN, P90 = PERCENTILES


@dataclass(frozen=True, order=True)
class IsoWeek:
    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """`2026-W48` → IsoWeek; ValueError saying what is expected."""
        match = _WEEK.match(text.strip())
        if match:
            year, week = int(match.group(1)), int(match.group(2))
            try:
                date.fromisocalendar(year, week, 1)
            except ValueError:
                pass
            else:
                return cls(year, week)
        raise ValueError(f"expected an ISO week such as 2026-W48, got {text!r}")

    @classmethod
    def containing(cls, when: datetime, tz: ZoneInfo) -> IsoWeek:
        iso = when.astimezone(tz).isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def before(cls, when: datetime, tz: ZoneInfo) -> IsoWeek:
        """The last full week before `when`: the default week of a report."""
        return cls.containing(when, tz).previous()

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    def previous(self) -> IsoWeek:
        iso = (self.monday() - timedelta(days=7)).isocalendar()
        return IsoWeek(iso.year, iso.week)

    def window(self, tz: ZoneInfo) -> Window:
        start = datetime.combine(self.monday(), datetime.min.time(), tz)
        return Window(start, start + timedelta(days=7))


@dataclass(frozen=True)
class Times:
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, values: dict[Any, float] | None) -> Times:
        if not values:
            return cls()
        return cls(round(values[MEDIAN], 1), round(values[P90], 1))


@dataclass(frozen=True)
class Headline:
    tally: Tally
    by_severity: dict[str, int]
    time_to_ack: Times
    time_to_respond: Times


@dataclass
class DepartmentRow:
    id: str
    name: str
    tally: Tally
    time_to_ack: Times
    time_to_respond: Times
    overdue_by_severity: dict[str, int]
    previous_response_on_time_rate: float | None
    effect: Effect
    rank: int = 0


@dataclass(frozen=True)
class Reason:
    rule: str
    text: str


@dataclass(frozen=True)
class Named:
    id: str
    name: str
    reasons: list[Reason]


@dataclass(frozen=True)
class TimelineItem:
    """One alert of an event: who got it, how grave, and when each step happened (steps
    after `as_of` are left out, so a report made earlier is reproducible)."""

    department: str
    severity: str
    created_at: datetime
    acknowledged_at: datetime | None
    responded_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True)
class EventTimeline:
    event: EventRow
    posts_by_day: list[int]
    items: list[TimelineItem]
    effect: Effect | None


@dataclass
class WeeklyReport:
    week: IsoWeek
    window: Window
    as_of: datetime
    options: ReportOptions
    headline: Headline
    previous: Headline
    departments: list[DepartmentRow]
    named: list[Named]
    topics: list[tuple[str, int, int]]  # topic, this week, previous week
    sentiment_by_day: dict[str, list[int]]  # sentiment → alerts per day (Mon … Sun)
    events: list[EventTimeline]
    effect: Effect
    department_names: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Exactly the fields of DESIGN "Weekly report as JSON"."""
        h = self.headline
        return {
            "week": str(self.week),
            "alerts": h.tally.alerts,
            "by_severity": h.by_severity,
            "ack_on_time_rate": h.tally.ack_on_time_rate,
            "response_on_time_rate": h.tally.response_on_time_rate,
            "time_to_ack_seconds": {"median": h.time_to_ack.median, "p90": h.time_to_ack.p90},
            "time_to_respond_seconds": {
                "median": h.time_to_respond.median,
                "p90": h.time_to_respond.p90,
            },
            "overdue": h.tally.overdue,
            "departments": [
                {
                    "id": d.id,
                    "alerts": d.tally.alerts,
                    "ack_on_time_rate": d.tally.ack_on_time_rate,
                    "response_on_time_rate": d.tally.response_on_time_rate,
                    "time_to_respond_seconds": {"median": d.time_to_respond.median},
                    "overdue": d.tally.overdue,
                }
                for d in self.departments
            ],
            "named": [
                {"id": n.id, "reasons": [{"rule": r.rule, "text": r.text} for r in n.reasons]}
                for n in self.named
            ],
        }


# --- assembly ---------------------------------------------------------------------------


def _durations(
    session: Session, items: sa.Subquery, as_of: datetime, until: str, by_department: bool
) -> dict[Any, dict[Any, float]]:
    return figures.percentiles(session, figures.durations(items, until, as_of, by_department))


def _headline(
    session: Session, items: sa.Subquery, tallies: dict[tuple[str, str], Tally], as_of: datetime
) -> Headline:
    """The headline figures of one window (also the previous week's, for the change)."""
    by_severity = {s: 0 for s in SEVERITIES}
    for (_dept, severity), t in tallies.items():
        by_severity[severity] += t.alerts
    return Headline(
        figures.total(tallies.values()),
        by_severity,
        Times.of(_durations(session, items, as_of, "acknowledged_at", False).get("all")),
        Times.of(_durations(session, items, as_of, "responded_at", False).get("all")),
    )


def build_weekly(
    session: Session, week: IsoWeek, options: ReportOptions, as_of: datetime
) -> WeeklyReport:
    """The report of `week` as known at `as_of`."""
    config = options.config
    window = week.window(options.tz)
    previous_window = week.previous().window(options.tz)
    items = figures.report_items(window)
    previous_items = figures.report_items(previous_window)
    rejections = config.named.transfer_rejections
    tallies = figures.tallies(session, items, as_of, rejections)
    previous_tallies = figures.tallies(session, previous_items, as_of, rejections)
    ack = _durations(session, items, as_of, "acknowledged_at", True)
    respond = _durations(session, items, as_of, "responded_at", True)
    hours = config.response_effect_hours
    effects = figures.response_effect(session, items, as_of, hours, "department_id")
    names = dict(session.execute(sa.select(Department.id, Department.name)).all())

    departments = _departments(tallies, previous_tallies, ack, respond, effects, names)
    events = _events(session, items, window, as_of, options, names)
    return WeeklyReport(
        week=week,
        window=window,
        as_of=as_of,
        options=options,
        headline=_headline(session, items, tallies, as_of),
        previous=_headline(session, previous_items, previous_tallies, as_of),
        departments=departments,
        named=_named(departments, options),
        topics=_topics(session, items, previous_items, config.top_topics),
        sentiment_by_day=_sentiments(session, items, window),
        events=events,
        effect=sum(effects.values(), Effect()),
        department_names=names,
    )


def _departments(
    tallies: dict[tuple[str, str], Tally],
    previous_tallies: dict[tuple[str, str], Tally],
    ack: dict[Any, dict[Any, float]],
    respond: dict[Any, dict[Any, float]],
    effects: dict[str, Effect],
    names: dict[str, str],
) -> list[DepartmentRow]:
    """Departments with items this week, ranked by performance (`rank_key`)."""
    per: dict[str, dict[str, Tally]] = defaultdict(dict)
    for (dept, severity), t in tallies.items():
        per[dept][severity] = t
    previous: dict[str, Tally] = defaultdict(Tally)
    for (dept, _severity), t in previous_tallies.items():
        previous[dept] = previous[dept] + t
    rows = [
        DepartmentRow(
            id=dept,
            name=names.get(dept, dept),
            tally=figures.total(by_severity.values()),
            time_to_ack=Times.of(ack.get(dept)),
            time_to_respond=Times.of(respond.get(dept)),
            overdue_by_severity={s: t.overdue for s, t in by_severity.items() if t.overdue},
            previous_response_on_time_rate=previous[dept].response_on_time_rate,
            effect=effects.get(dept, Effect()),
        )
        for dept, by_severity in per.items()
    ]
    rows.sort(key=rank_key)
    for rank, row in enumerate(rows, 1):
        row.rank = rank
    return rows


def rank_key(row: DepartmentRow) -> tuple[Any, ...]:
    """Best first: response on-time rate, then ack on-time rate (higher first, no rate
    last), fewer overdue, quicker median response, then id for a stable order."""
    t, median = row.tally, row.time_to_respond.median
    return (
        t.response_on_time_rate is None,
        -(t.response_on_time_rate or 0.0),
        t.ack_on_time_rate is None,
        -(t.ack_on_time_rate or 0.0),
        t.overdue,
        median is None,
        median or 0.0,
        row.id,
    )


def percent(value: float | None) -> str:
    """0.8 → `80.0%`; None → `—` (the way the report prints rates)."""
    return "—" if value is None else f"{value * 100:.1f}%"


def _named(departments: list[DepartmentRow], options: ReportOptions) -> list[Named]:
    """The departments `config/report.yaml` names, each with every rule it broke."""
    rules = options.config.named
    labels = options.severity_labels
    named = []
    for d in departments:
        reasons = []
        r = d.tally.response_on_time_rate
        if r is not None and r < rules.response_on_time_rate_below:
            reasons.append(
                Reason(
                    "response_on_time_rate",
                    f"回应按时率 {percent(r)}，低于 {percent(rules.response_on_time_rate_below)}",
                )
            )
        overdue = [
            f"{labels.get(s, s)} {d.overdue_by_severity[s]} 件"
            for s in rules.overdue_severities
            if d.overdue_by_severity.get(s)
        ]
        if overdue:
            reasons.append(Reason("overdue", "逾期未回应：" + "，".join(overdue)))
        if d.tally.rejected:
            reasons.append(
                Reason(
                    "transfer_rejections",
                    f"{d.tally.rejected} 件预警的转办申请被驳回"
                    f" {rules.transfer_rejections} 次及以上",
                )
            )
        limit = rules.median_response_hours_above
        median = d.time_to_respond.median
        if limit is not None and median is not None and median > limit * 3600:
            reasons.append(
                Reason(
                    "slow_response",
                    f"回应用时中位数 {median / 3600:.1f} 小时，超过 {limit:g} 小时",
                )
            )
        if reasons:
            named.append(Named(d.id, d.name, reasons))
    return named


def _topics(
    session: Session, items: sa.Subquery, previous_items: sa.Subquery, limit: int
) -> list[tuple[str, int, int]]:
    this = figures.by_topic(session, items)
    before = figures.by_topic(session, previous_items)
    ranked = sorted(this, key=lambda t: (-this[t], t))[:limit]
    return [(t, this[t], before.get(t, 0)) for t in ranked]


def _sentiments(session: Session, items: sa.Subquery, window: Window) -> dict[str, list[int]]:
    counts = figures.sentiment_by_day(session, items, window)
    out = {s: [0] * 7 for s in (*SENTIMENTS, figures.UNCLASSIFIED)}
    for (day, sentiment), n in counts.items():
        out[sentiment or figures.UNCLASSIFIED][day] += n
    return out


def _events(
    session: Session,
    items: sa.Subquery,
    window: Window,
    as_of: datetime,
    options: ReportOptions,
    names: dict[str, str],
) -> list[EventTimeline]:
    """The week's top events with their posts per day and what was done, in order."""
    top = figures.top_events(session, items, options.config.top_events)
    if not top:
        return []
    ids = [e.id for e in top]
    posts = figures.event_posts_by_day(session, ids, window)
    effects = figures.response_effect(
        session, items, as_of, options.config.response_effect_hours, "event_id", ids
    )
    timelines: dict[str, list[TimelineItem]] = defaultdict(list)
    labels = options.severity_labels

    def known(when: datetime | None) -> datetime | None:
        return when if when is not None and when <= as_of else None

    for row in figures.event_items(session, items, ids):
        timelines[row.event_id].append(
            TimelineItem(
                names.get(row.department_id, row.department_id),
                labels.get(row.severity, row.severity),
                row.created_at,
                known(row.acknowledged_at),
                known(row.responded_at),
                known(row.closed_at),
            )
        )
    return [
        EventTimeline(
            event=e,
            posts_by_day=[posts.get((e.id, day), 0) for day in range(7)],
            items=timelines[e.id],
            effect=effects.get(e.id),
        )
        for e in top
    ]
