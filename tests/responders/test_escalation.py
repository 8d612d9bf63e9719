"""Escalation across time on an injectable clock: reminders, late acknowledgement and
response, press conference, re-notification; done once each, whatever restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from pipeline.bus.local import LocalBus
from pipeline.config import load_file
from pipeline.messages import TOPIC_ALERTS
from pipeline.messages import Alert as AlertMessage
from pipeline.storage import models
from pipeline.storage.db import session_factory
from pipeline.storage.models import Report
from responders.escalation import (
    ESCALATIONS,
    PUBLISH_FAILURES,
    Escalation,
    EscalationFile,
    Escalator,
    Lead,
    SchedulerStage,
    due_escalations,
)
from responders.notify.config import NotifyFile
from responders.notify.dispatch import Dispatcher
from responders.notify.message import Labels
from responders.publish import Publisher
from tests.responders.conftest import CONFIG, ON_BOTH, T0, Clock

HOOK = {"channel": "webhook", "url": "https://hooks.example.cn/y", "secret_env": "YUQING_HOOK"}
NOTIFY = NotifyFile.model_validate(
    {
        "targets": {"dept": HOOK, "press": HOOK, "leaders": HOOK},
        "audiences": {"press": ["press"], "leadership": ["leaders"]},
        "departments": {"default": ["dept"]},
        "routes": [
            {
                "events": [
                    "ack_reminder",
                    "response_reminder",
                    "press_conference_reminder",
                    "renotify",
                ],
                "notify": ["department"],
            },
            {"events": ["ack_late"], "notify": ["department", "press"]},
            {
                "events": ["response_late", "press_conference_late"],
                "notify": ["department", "press", "leadership"],
            },
        ],
    }
)
REPO_ESCALATION = load_file(CONFIG, "escalation.yaml", EscalationFile)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def escalator(sessions: sessionmaker[Session], labels: Labels, clock: Clock) -> Escalator:
    return Escalator(sessions, REPO_ESCALATION, Dispatcher(NOTIFY, labels), clock=clock)


def at(clock: Clock, **span: float) -> None:
    clock.now = T0 + timedelta(**span)


def kinds(done: list[Any]) -> list[str]:
    return sorted(e.kind for e in done)


def update(sessions: sessionmaker[Session], alert_id: str, **values: Any) -> None:
    with sessions.begin() as session:
        session.execute(sa.update(models.Alert).where(models.Alert.id == alert_id).values(**values))


def audit(sessions: sessionmaker[Session], alert_id: str) -> list[tuple[str, dict[str, Any]]]:
    with sessions() as session:
        rows = session.scalars(
            sa.select(models.AlertLogEntry)
            .where(
                models.AlertLogEntry.alert_id == alert_id, models.AlertLogEntry.action != "raise"
            )
            .order_by(models.AlertLogEntry.id)
        )
        return [(row.action, row.detail or {}) for row in rows]


def scan(sessions: sessionmaker[Session], alert_id: str, clock: Clock) -> list[Escalation]:
    """What the scheduler's scan finds due for one alert now."""
    with sessions() as session:
        alert = session.get(models.Alert, alert_id)
        return due_escalations(alert, REPO_ESCALATION.rule(alert.severity), clock.now)


def notes(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.scalars(sa.select(models.Notification).order_by(models.Notification.id))
        return [(row.kind, row.target) for row in rows]


@ON_BOTH
def test_a_critical_alert_across_a_day(
    escalator: Escalator, sessions: sessionmaker[Session], make_alert, clock: Clock
) -> None:
    """Raised at T0: ack due +30 min, response +5 h, press conference +24 h; reminders
    25 % of the window ahead; re-notify hourly once acknowledged."""
    alert = make_alert(severity="critical")
    escalated = ESCALATIONS.labels("ack_late")._value.get()
    timeline = [
        ({"minutes": 10}, []),
        ({"minutes": 23}, ["ack_reminder"]),  # 30 min − 7.5 min
        ({"minutes": 25}, []),
        ({"minutes": 31}, ["ack_late"]),
        ({"minutes": 32}, []),
    ]
    for span, expected in timeline:
        at(clock, **span)
        assert kinds(escalator.run_once()) == expected, span

    update(sessions, alert.id, state="acknowledged", acknowledged_at=T0 + timedelta(minutes=40))
    timeline = [
        ({"hours": 1, "minutes": 39}, []),
        ({"hours": 1, "minutes": 41}, ["renotify"]),  # an hour after the ack
        ({"hours": 2, "minutes": 30}, []),
        ({"hours": 3, "minutes": 46}, ["renotify", "response_reminder"]),  # 5 h − 1 h 15
        ({"hours": 5, "minutes": 1}, ["renotify", "response_late"]),  # 4 h 40 too
        ({"hours": 5, "minutes": 2}, []),
        ({"hours": 18, "minutes": 1}, ["press_conference_reminder", "renotify"]),  # 24 h − 6 h
    ]
    for span, expected in timeline:
        at(clock, **span)
        assert kinds(escalator.run_once()) == expected, span

    update(sessions, alert.id, state="responded", responded_at=clock.now)
    at(clock, hours=24, minutes=1)
    assert kinds(escalator.run_once()) == ["press_conference_late"]  # no 新闻发布会 yet
    at(clock, hours=30)
    assert escalator.run_once() == []

    with sessions() as session:
        assert session.get(models.Alert, alert.id).overdue is True
    log = audit(sessions, alert.id)
    assert [action for action, _ in log] == [
        "ack_reminder",
        "ack_late",
        "renotify",
        "response_reminder",
        "renotify",
        "response_late",
        "renotify",
        "press_conference_reminder",
        "renotify",
        "press_conference_late",
    ]
    ack_late = dict(log)["ack_late"]
    assert ack_late == {"due_at": "2026-11-17T02:30:00+00:00", "notified": ["dept", "press"]}
    assert ("response_late", "leaders") in notes(sessions)
    assert notes(sessions).count(("ack_late", "press")) == 1
    assert ESCALATIONS.labels("ack_late")._value.get() == escalated + 1


def test_the_overdue_payload_says_so(
    escalator: Escalator, sessions: sessionmaker[Session], make_alert, clock: Clock
) -> None:
    make_alert(severity="high")
    at(clock, hours=25)
    assert kinds(escalator.run_once()) == ["ack_late", "response_late"]
    with sessions() as session:
        late = session.scalars(
            sa.select(models.Notification).where(models.Notification.kind == "response_late")
        ).first()
    assert late.payload["alert"]["overdue"] is True
    assert "（已超期）" in dict(late.payload["facts"])["状态"]
    assert late.payload["subject"].startswith("【回应超时，已报领导】[较大]")


def test_the_overdue_mark_is_published_on_alerts(
    sessions: sessionmaker[Session], labels: Labels, make_alert, clock: Clock, tmp_path: Path
) -> None:
    """Notifiers and other consumers of `alerts` learn of the overdue mark like of any
    queue action: after the commit, keyed by department, with the audit row's change id.
    Reminders change nothing on the alert and publish nothing."""
    bus = LocalBus(tmp_path / "bus.sqlite3")
    bus.create_topics({TOPIC_ALERTS: 1})
    publisher = Publisher(bus, PUBLISH_FAILURES)
    alert = make_alert(severity="high")
    escalator = Escalator(
        sessions, REPO_ESCALATION, Dispatcher(NOTIFY, labels), clock=clock, publisher=publisher
    )
    try:
        at(clock, hours=3)
        assert escalator.run_once()  # the ack reminder and the late ack: no change
        at(clock, hours=25)
        assert "response_late" in kinds(escalator.run_once())
        publisher.close()
        with bus.consumer([TOPIC_ALERTS], "test") as consumer:
            records = consumer.poll(10, 5.0)
    finally:
        bus.close()
    assert len(records) == 1
    message = AlertMessage.from_json(records[0].value)
    assert (message.id, message.change, message.overdue) == (alert.id, "changed", True)
    assert records[0].key == alert.department_id.encode()
    with sessions() as session:
        entry = session.scalars(
            sa.select(models.AlertLogEntry).where(
                models.AlertLogEntry.alert_id == alert.id,
                models.AlertLogEntry.action == "response_late",
            )
        ).one()
    assert message.change_id == f"{alert.id}:{entry.id}"


def test_working_clock_reminders_fall_in_office_hours(
    sessions: sessionmaker[Session], labels: Labels, make_alert, clock: Clock, deadlines
) -> None:
    """A low alert raised on Friday 17:00 (Shanghai): its one-working-day ack is due on
    Monday 17:00. A quarter of that window in office time is 2 h 15 min, so the reminder
    goes on Monday 14:45; a quarter in calendar time would have been Sunday 23:00."""
    friday_17 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    alert = make_alert(severity="low", at=friday_17)
    assert alert.ack_due.astimezone(UTC) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def due_at(escalator: Escalator, when: datetime) -> list[str]:
        clock.now = when
        with sessions() as session:
            return kinds(escalator._due(session.get(models.Alert, alert.id), when))

    office = Escalator(
        sessions, REPO_ESCALATION, Dispatcher(NOTIFY, labels), clock=clock, deadlines=deadlines
    )
    calendar = Escalator(sessions, REPO_ESCALATION, Dispatcher(NOTIFY, labels), clock=clock)
    sunday_2330 = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    assert due_at(calendar, sunday_2330) == ["ack_reminder"]
    assert due_at(office, sunday_2330) == []
    assert due_at(office, datetime(2026, 11, 23, 6, 40, tzinfo=UTC)) == []  # Mon 14:40
    assert due_at(office, datetime(2026, 11, 23, 6, 50, tzinfo=UTC)) == ["ack_reminder"]
    # The five-working-day response: 45 h of office time, reminded 11 h 15 min before
    # its end, on Thursday 14:45 (calendar time: Thursday 23:00).
    assert due_at(office, datetime(2026, 11, 26, 6, 40, tzinfo=UTC)) == ["ack_late"]
    assert due_at(office, datetime(2026, 11, 26, 6, 50, tzinfo=UTC)) == [
        "ack_late",
        "response_reminder",
    ]


@ON_BOTH
def test_a_restart_misses_nothing_and_repeats_nothing(
    sessions: sessionmaker[Session], labels: Labels, make_alert, clock: Clock
) -> None:
    """A scheduler that was down through every deadline escalates them when it is back —
    the late ones, not reminders of deadlines already passed — and a second process
    (or the next start) finds them done."""
    critical = make_alert(severity="critical")
    low = make_alert(severity="low")
    at(clock, hours=6)

    def fresh() -> Escalator:
        return Escalator(sessions, REPO_ESCALATION, Dispatcher(NOTIFY, labels), clock=clock)

    done = fresh().run_once()
    assert sorted((e.alert_id, e.kind) for e in done) == sorted(
        [(critical.id, "ack_late"), (critical.id, "response_late")]
    )
    assert fresh().run_once() == []
    assert len(notes(sessions)) == 2 + 3
    with sessions() as session:
        assert session.get(models.Alert, low.id).overdue is False


@ON_BOTH
def test_two_schedulers_escalate_once(
    escalator: Escalator,
    sessions: sessionmaker[Session],
    labels: Labels,
    make_alert,
    clock: Clock,
) -> None:
    alert = make_alert(severity="high")
    at(clock, hours=3)
    [late] = scan(sessions, alert.id, clock)
    other = Escalator(sessions, REPO_ESCALATION, Dispatcher(NOTIFY, labels), clock=clock)
    assert other._perform(late, clock.now) is True
    assert escalator._perform(late, clock.now) is False  # its audit key exists
    assert notes(sessions) == [("ack_late", "dept"), ("ack_late", "press")]


@ON_BOTH
def test_an_ack_between_scan_and_escalation_stops_it(
    escalator: Escalator, sessions: sessionmaker[Session], make_alert, clock: Clock
) -> None:
    alert = make_alert(severity="high")
    at(clock, hours=3)
    [late] = scan(sessions, alert.id, clock)
    update(sessions, alert.id, state="acknowledged", acknowledged_at=clock.now)
    assert escalator._perform(late, clock.now) is False
    assert notes(sessions) == [] and audit(sessions, alert.id) == []


def test_a_severity_change_escalates_the_new_deadlines(
    escalator: Escalator, sessions: sessionmaker[Session], make_alert, clock: Clock, deadlines
) -> None:
    alert = make_alert(severity="low")
    at(clock, hours=1)
    assert escalator.run_once() == []
    due = deadlines.due("critical", T0)  # from the original raise time
    update(
        sessions,
        alert.id,
        severity="critical",
        ack_due=due.ack_due,
        response_due=due.response_due,
        press_conference_due=due.press_conference_due,
    )
    assert kinds(escalator.run_once()) == ["ack_late"]


@pytest.mark.parametrize("state", ["closed", "dismissed", "responded"])
def test_nothing_for_settled_alerts(
    state: str, escalator: Escalator, sessions: sessionmaker[Session], make_alert, clock: Clock
) -> None:
    alert = make_alert(severity="medium")
    update(sessions, alert.id, state=state, responded_at=T0 if state == "responded" else None)
    at(clock, days=10)
    assert escalator.run_once() == []


def test_a_transfer_request_still_counts_as_unacknowledged(
    escalator: Escalator, sessions: sessionmaker[Session], make_alert, clock: Clock
) -> None:
    alert = make_alert(severity="high")
    update(sessions, alert.id, state="transfer_requested")
    at(clock, hours=3)
    assert kinds(escalator.run_once()) == ["ack_late"]


def test_after_a_long_outage_only_the_latest_renotify_is_sent(
    escalator: Escalator, sessions: sessionmaker[Session], make_alert, clock: Clock
) -> None:
    alert = make_alert(severity="low")  # response due in 5 working days
    update(sessions, alert.id, state="acknowledged", acknowledged_at=T0)
    at(clock, days=3, hours=1)
    [renotify] = escalator.run_once()
    assert renotify.kind == "renotify" and renotify.due_at == T0 + timedelta(days=3)


def test_reminder_lead_as_duration_and_off(
    sessions: sessionmaker[Session], labels: Labels, make_alert, clock: Clock
) -> None:
    config = EscalationFile.model_validate(
        {"severities": {"high": {"reminder_lead": "10m"}, "medium": {"reminder_lead": None}}}
    )
    escalator = Escalator(sessions, config, Dispatcher(NOTIFY, labels), clock=clock)
    make_alert(severity="high")  # ack due +2 h
    make_alert(severity="medium")
    at(clock, hours=1, minutes=49)
    assert escalator.run_once() == []
    at(clock, hours=1, minutes=50)
    assert kinds(escalator.run_once()) == ["ack_reminder"]


def test_schema() -> None:
    assert REPO_ESCALATION.check_every == timedelta(seconds=30)
    assert REPO_ESCALATION.rule("critical").reminder_lead == Lead(share=0.25)
    assert REPO_ESCALATION.rule("critical").renotify_every == timedelta(hours=1)
    assert EscalationFile().rule("low").renotify_every is None
    for bad, message in [
        ({"severities": {"high": {"reminder_lead": "150%"}}}, "between 0% and 100%"),
        ({"severities": {"high": {"reminder_lead": "soon"}}}, "unit"),
        ({"severities": {"urgent": {}}}, "urgent"),
        ({"check_every": "0s"}, "above zero"),
        ({"severities": {"high": {"renotify": "1h"}}}, "renotify"),
    ]:
        with pytest.raises(ValidationError, match=message):
            EscalationFile.model_validate(bad)


def test_scheduler_stage_ticks_until_stopped(
    sqlite_url: str, tmp_path: Path, make_alert, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage from its settings, run by the periodic runner: escalations get done."""
    import threading

    from pipeline.runner import StageContext, StopFlag
    from pipeline.settings import Settings

    config = tmp_path / "config"
    config.mkdir()
    for name in ("departments.yaml", "sla.yaml"):
        (config / name).write_text((CONFIG / name).read_text(encoding="utf-8"), "utf-8")
    (config / "escalation.yaml").write_text("check_every: 0.05s\n", encoding="utf-8")
    (config / "report.yaml").write_text("archive_formats: [json]\n", encoding="utf-8")
    alert = make_alert(severity="critical")  # at T0, long past: ack and response late
    settings = Settings(config_dir=config, database_url=sqlite_url, metrics_port=0)
    stage = SchedulerStage(StageContext(settings=settings, bus=None))  # type: ignore[arg-type]
    assert stage.interval == 0.05
    stop = StopFlag()
    thread = threading.Thread(target=stage.run, args=(stop,))
    thread.start()
    sessions = stage.ctx.sessions
    try:
        for _ in range(100):
            if len(audit(sessions, alert.id)) >= 3:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert sorted(a for a, _ in audit(sessions, alert.id)) == [
        "ack_late",
        "press_conference_late",
        "response_late",
    ]
    # the same ticks archive the weekly report that is due (last week's, empty here)
    with sessions() as session:
        archived = session.execute(sa.select(Report.kind, Report.format)).all()
    assert archived == [("weekly", "json")]
