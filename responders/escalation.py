"""Escalation (the `scheduler` stage): reminders before a deadline, and what happens when
one passes (DESIGN.md "Severity and deadlines").

| kind | when | while the alert is open and |
| --- | --- | --- |
| `ack_reminder` | `reminder_lead` before `ack_due` | not acknowledged |
| `ack_late` | at `ack_due` (press office notified) | not acknowledged |
| `response_reminder` | `reminder_lead` before `response_due` | not responded |
| `response_late` | at `response_due` (leadership notified, marked overdue) | not responded |
| `press_conference_reminder` | `reminder_lead` before `press_conference_due` | no 新闻发布会 |
| `press_conference_late` | at `press_conference_due` (critical alerts) | no 新闻发布会 |
| `renotify` | every `renotify_every` after the acknowledgement | acknowledged only |

Who is notified is `notify.yaml`'s business (`responders.notify.dispatch`); when is
`escalation.yaml`'s. The scheduler runs from the database alone: every tick it computes
from the open alerts which escalations are due and has not done those whose audit entry
exists. An escalation is one transaction: its `alert_log` entry (unique `event_key` =
alert, kind, due time), its notification rows and the overdue mark. A restart therefore
misses nothing (what is due is still due) and repeats nothing (what was committed is
logged); two schedulers cannot both do one escalation (the key is unique).

Conditions are read at tick time: a reminder whose deadline has already passed is not
sent late (the `…_late` escalation says more), and after an outage only the latest
re-notification is sent, not one for every interval missed. A severity change moves the
due times and so gives new keys: the new deadlines are escalated in turn.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import sqlalchemy as sa
from prometheus_client import Counter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from pipeline import messages
from pipeline.config import load_file
from pipeline.messages import now_utc
from pipeline.runner import PeriodicStage, StageContext
from pipeline.settings import Settings
from pipeline.storage.models import OPEN_ALERT_STATES, Alert
from pipeline.storage.repository import append_audit, logged_event_keys
from responders import queue
from responders.deadlines import DeadlineCalculator, load_calculator
from responders.durations import Duration, parse
from responders.notify import log
from responders.notify.config import load_notify
from responders.notify.dispatch import Dispatcher
from responders.notify.message import AlertFacts, Labels
from responders.publish import Publisher
from responders.reports.archive import WeeklyReportHook

logger = logging.getLogger(__name__)

ESCALATION_FILE = "escalation.yaml"

ESCALATIONS = Counter(
    "yuqing_escalations_total", "Escalations done by the scheduler, by kind.", ["kind"]
)
PUBLISH_FAILURES = Counter(
    "yuqing_scheduler_publish_failures_total",
    "Overdue marks committed but not published to the `alerts` topic.",
)

_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")


class Lead(BaseModel):
    """How long before a deadline its reminder goes: a share of the alert's window
    (raised → due), or a fixed duration.

    For a deadline counted on the working clock (`sla.yaml` `clock: working`), both are
    office time, given `office`: a one-working-day ack raised on Friday afternoon is
    reminded on Monday afternoon, not on Sunday night as calendar time would have it.
    """

    model_config = ConfigDict(frozen=True)

    share: float | None = None
    span: timedelta | None = None

    def reminder_at(
        self, raised: datetime, due: datetime, office: DeadlineCalculator | None = None
    ) -> datetime:
        window = due - raised if office is None else office.office_time_between(raised, due)
        lead = window * self.share if self.share is not None else self.span
        assert lead is not None
        if office is None:
            return due - lead
        return office.add_office_time(raised, max(window - lead, timedelta(0)))


def _lead(value: object) -> Lead | None:
    if value is None or isinstance(value, Lead):
        return value
    match = _PERCENT.match(str(value).strip())
    if match:
        share = float(match.group(1)) / 100
        if not 0 < share < 1:
            raise ValueError(f"a reminder lead share must lie between 0% and 100%, got {value!r}")
        return Lead(share=share)
    return Lead(span=parse(value))


class SeverityEscalation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: `25%` of the window, or a duration (`30m`); null: no reminders.
    reminder_lead: Annotated[Lead | None, BeforeValidator(_lead)] = Lead(share=0.25)
    #: Re-notify an acknowledged, unanswered alert this often; null: never.
    renotify_every: Duration | None = None


class EscalationFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: How often the scheduler looks for due escalations.
    check_every: Duration = timedelta(seconds=30)
    severities: dict[Literal["critical", "high", "medium", "low"], SeverityEscalation] = Field(
        default_factory=dict
    )

    def rule(self, severity: str) -> SeverityEscalation:
        return self.severities.get(severity, SeverityEscalation())  # type: ignore[call-overload]


def load_escalation(settings: Settings) -> EscalationFile:
    """`escalation.yaml` of the config directory; absent: the defaults above."""
    if not (settings.config_dir / ESCALATION_FILE).exists():
        return EscalationFile()
    return load_file(settings.config_dir, ESCALATION_FILE, EscalationFile)


# --- what is due ----------------------------------------------------------------------


@dataclass(frozen=True)
class Escalation:
    alert_id: str
    kind: str
    due_at: datetime

    @property
    def event_key(self) -> str:
        """The audit log's idempotency key (the notifications' keys extend it); the due
        time in UTC, however the caller's datetime is zoned."""
        return f"escalation:{self.alert_id}:{self.kind}:{self.due_at.astimezone(UTC).isoformat()}"


def due_escalations(
    alert: Alert,
    rule: SeverityEscalation,
    now: datetime,
    deadlines: DeadlineCalculator | None = None,
) -> list[Escalation]:
    """Escalations of `alert` due at `now` (done or not: the audit log knows).

    With `deadlines`, reminders of working-clock deadlines are placed in office time
    (see `Lead`); without, in calendar time."""
    found: list[Escalation] = []
    # Due times count from the start of the current round (creation or last reopen).
    raised = alert.raised_at or alert.created_at

    def deadline(prefix: str, due: datetime | None, waiting: bool) -> None:
        if due is None or not waiting:
            return
        if now >= due:
            found.append(Escalation(alert.id, f"{prefix}_late", due))
            return
        lead = rule.reminder_lead
        if lead is None:
            return
        office = (
            deadlines
            if deadlines is not None and deadlines.counts_office_time(alert.severity, prefix)
            else None
        )
        if now >= lead.reminder_at(raised, due, office):
            found.append(Escalation(alert.id, f"{prefix}_reminder", due))

    open_ = alert.state in OPEN_ALERT_STATES
    answered = alert.responded_at is not None or alert.state == "responded"
    acknowledged = answered or alert.acknowledged_at is not None or alert.state == "acknowledged"
    deadline("ack", alert.ack_due, open_ and not acknowledged)
    deadline("response", alert.response_due, open_ and not answered)
    held = alert.press_conference_at is not None
    deadline("press_conference", alert.press_conference_due, open_ and not held)
    every = rule.renotify_every
    if every and alert.state == "acknowledged" and not answered and alert.acknowledged_at:
        rounds = (now - alert.acknowledged_at) // every
        if rounds >= 1:
            found.append(Escalation(alert.id, "renotify", alert.acknowledged_at + rounds * every))
    return found


# --- doing it -------------------------------------------------------------------------


class Escalator:
    """Finds and performs due escalations; `clock` is injectable for tests.

    The overdue mark changes the alert, so it is also published on `alerts` (after the
    commit, like a queue action of the web app) when a `publisher` is given.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: EscalationFile,
        dispatcher: Dispatcher,
        *,
        clock: Callable[[], datetime] = now_utc,
        publisher: Publisher | None = None,
        deadlines: DeadlineCalculator | None = None,
    ):
        self.sessions = sessions
        self.config = config
        self.dispatcher = dispatcher
        self.clock = clock
        self.publisher = publisher
        self.deadlines = deadlines

    def _due(self, alert: Alert, now: datetime) -> list[Escalation]:
        return due_escalations(alert, self.config.rule(alert.severity), now, self.deadlines)

    def run_once(self) -> list[Escalation]:
        """Do every escalation due now and not done yet; returns those done here."""
        now = self.clock()
        with self.sessions.begin() as session:
            alerts = session.scalars(sa.select(Alert).where(Alert.state.in_(OPEN_ALERT_STATES)))
            due = [escalation for alert in alerts for escalation in self._due(alert, now)]
            done = logged_event_keys(session, [e.event_key for e in due])
        return [e for e in due if e.event_key not in done and self._perform(e, now)]

    def _perform(self, escalation: Escalation, now: datetime) -> bool:
        """The audit entry, the notifications and the overdue mark, all or nothing; on
        the alert as it is now (locked on PostgreSQL), in case it moved since the scan."""
        kind = escalation.kind
        change: messages.Alert | None = None
        with self.sessions.begin() as session:
            alert = session.scalars(
                sa.select(Alert).where(Alert.id == escalation.alert_id).with_for_update()
            ).one()
            if escalation not in self._due(alert, now):
                return False  # acknowledged or answered meanwhile
            facts = AlertFacts.of_row(alert)
            if kind == "response_late":
                facts = replace(facts, overdue=True)
            rows = self.dispatcher.rows(kind, facts, escalation.event_key, due_at=escalation.due_at)
            if not append_audit(
                session,
                action=kind,
                alert_id=alert.id,
                at=now,
                detail={
                    "due_at": escalation.due_at.isoformat(),
                    "notified": [row["target"] for row in rows],
                },
                event_key=escalation.event_key,
            ):
                return False  # another scheduler did it first
            if kind == "response_late":
                alert.overdue = True
                session.flush()
                change = queue.change_message(session, alert)
            log.enqueue(session, rows, now)
        if change is not None and self.publisher is not None:
            self.publisher.publish(change, change.department)
        ESCALATIONS.labels(kind).inc()
        logger.info(
            "alert %s: %s (due %s), notified %d", alert.id, kind, escalation.due_at, len(rows)
        )
        return True


class SchedulerStage(PeriodicStage):
    """`yuqing run scheduler`: escalation every `check_every`, and the weekly report
    generated and archived once it is due (Monday 08:00 by default, `config/report.yaml`)."""

    name = "scheduler"

    def __init__(self, ctx: StageContext):
        super().__init__(ctx)
        config = load_escalation(ctx.settings)
        self.interval = config.check_every.total_seconds()
        dispatcher = Dispatcher(load_notify(ctx.settings), Labels.load(ctx.settings))
        self.publisher = Publisher(ctx.bus, PUBLISH_FAILURES)
        self.escalator = Escalator(
            ctx.sessions,
            config,
            dispatcher,
            publisher=self.publisher,
            deadlines=load_calculator(ctx.settings),
        )
        self.reports = WeeklyReportHook.from_settings(ctx.settings, ctx.sessions)

    def tick(self) -> None:
        self.escalator.run_once()
        self.reports.tick()

    def close(self) -> None:
        self.publisher.close()
        super().close()
