"""The queue: every transition allowed and refused per role and state, the audit log,
deadlines on severity change and reopen, transfers, crawled replies, messages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipeline.storage import models
from responders import metrics
from responders.deadlines import DeadlineCalculator
from responders.queue import (
    ACTIONS,
    FROM_STATES,
    ROLE_ACTIONS,
    Actor,
    QueueError,
    act,
    alert_log,
    change_message,
    get_alert,
    record_crawled_reply,
    visible,
)
from tests.responders.conftest import T0

PRESS = Actor("press1", "press")
DEPT = Actor("env1", "department", "environment")
OTHER_DEPT = Actor("edu1", "department", "education")
LEADER = Actor("leader1", "leader")
ADMIN = Actor("admin1", "admin")
HUMANS = {"press": PRESS, "department": DEPT, "leader": LEADER, "admin": ADMIN}

FIELDS = {
    "respond": {
        "text": "已派员核查，三日内答复。",
        "channel": "政府网站",
        "link": "https://gov.example/1",
    },
    "request_transfer": {"department": "urban-enforcement", "reason": "属城管执法职责"},
    "reject_transfer": {"reason": "属环保职责"},
    "dismiss": {"reason": "误报"},
    "reassign": {"department": "urban-enforcement", "reason": "职责调整"},
    "reopen": {"reason": "仍有投诉"},
    "instruct": {"text": "请尽快核实并回应"},
    "change_severity": {"severity": "high", "reason": "涉及学校"},
}

#: How to bring a fresh (`new`) alert into each state, by legitimate actions.
PATHS: dict[str, list[tuple[Actor, str]]] = {
    "new": [],
    "acknowledged": [(DEPT, "acknowledge")],
    "responded": [(DEPT, "respond")],
    "closed": [(DEPT, "respond"), (DEPT, "close")],
    "transfer_requested": [(DEPT, "request_transfer")],
    "dismissed": [(PRESS, "dismiss")],
}

#: A state each action is allowed from.
START = {action: sorted(states)[0] for action, states in FROM_STATES.items()}
START.update(respond="acknowledged", instruct="new", close="responded")


@pytest.fixture
def alert_in(
    session: Session, make_alert: Callable[..., models.Alert], deadlines: DeadlineCalculator
) -> Callable[[str], models.Alert]:
    def make(state: str) -> models.Alert:
        alert = make_alert("environment", "medium")
        for i, (actor, action) in enumerate(PATHS[state]):
            when = T0 + timedelta(minutes=10 * (i + 1))
            act(
                session,
                alert.id,
                actor,
                action,
                now=when,
                deadlines=deadlines,
                **FIELDS.get(action, {}),
            )
        session.commit()
        assert alert.state == state
        return alert

    return make


def _do(
    session: Session,
    alert: models.Alert,
    actor: Actor,
    action: str,
    deadlines: DeadlineCalculator,
    **extra: str,
) -> models.Alert:
    fields = {**FIELDS.get(action, {}), **extra}
    return act(
        session, alert.id, actor, action, now=T0 + timedelta(hours=1), deadlines=deadlines, **fields
    )


# ------------------------------------------------------------------ who may do what


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", sorted(HUMANS))
def test_role_may_or_may_not_act(
    session: Session,
    alert_in: Callable[[str], models.Alert],
    deadlines: DeadlineCalculator,
    role: str,
    action: str,
) -> None:
    alert = alert_in(START[action])
    before = len(alert_log(session, alert.id))
    if action in ROLE_ACTIONS[role]:
        _do(session, alert, HUMANS[role], action, deadlines)
        assert len(alert_log(session, alert.id)) == before + 1
    else:
        with pytest.raises(QueueError) as err:
            _do(session, alert, HUMANS[role], action, deadlines)
        assert err.value.status == 403
        assert len(alert_log(session, alert.id)) == before


def test_leader_only_instructs_and_admin_acts_on_nothing() -> None:
    assert ROLE_ACTIONS["leader"] == {"instruct"}
    assert ROLE_ACTIONS["admin"] == frozenset()
    assert "acknowledge" not in ROLE_ACTIONS["press"]


@pytest.mark.parametrize("action", ACTIONS)
def test_other_department_gets_404_for_every_action(
    session: Session,
    alert_in: Callable[[str], models.Alert],
    deadlines: DeadlineCalculator,
    action: str,
) -> None:
    alert = alert_in(START[action])
    with pytest.raises(QueueError) as err:
        _do(session, alert, OTHER_DEPT, action, deadlines)
    assert err.value.status == 404
    with pytest.raises(QueueError) as err:
        get_alert(session, alert.id, OTHER_DEPT)
    assert err.value.status == 404


def test_unknown_alert_is_404(session: Session, deadlines: DeadlineCalculator) -> None:
    with pytest.raises(QueueError) as err:
        act(session, "al-nope", PRESS, "dismiss", deadlines=deadlines, reason="x")
    assert err.value.status == 404


def test_visible_limits_lists(session: Session, make_alert: Callable[..., models.Alert]) -> None:
    env = make_alert("environment")
    edu = make_alert("education")
    query = sa.select(models.Alert.id)
    assert set(session.scalars(visible(DEPT, query))) == {env.id}
    assert set(session.scalars(visible(OTHER_DEPT, query))) == {edu.id}
    for actor in (PRESS, LEADER, ADMIN):
        assert set(session.scalars(visible(actor, query))) == {env.id, edu.id}
    assert list(session.scalars(visible(Actor("x", "department"), query))) == []
    assert list(session.scalars(visible(Actor("x", "guest"), query))) == []


# ------------------------------------------------------------------ which state allows what


def _actor_for(action: str) -> Actor:
    for actor in (DEPT, PRESS, LEADER):
        if action in ROLE_ACTIONS[actor.role]:
            return actor
    raise AssertionError(action)


@pytest.mark.parametrize(
    ("action", "state"),
    [(action, state) for action in ACTIONS for state in PATHS if state not in FROM_STATES[action]],
)
def test_state_does_not_allow(
    session: Session,
    alert_in: Callable[[str], models.Alert],
    deadlines: DeadlineCalculator,
    action: str,
    state: str,
) -> None:
    alert = alert_in(state)
    with pytest.raises(QueueError) as err:
        _do(session, alert, _actor_for(action), action, deadlines)
    assert err.value.status == 409
    assert alert.state == state


@pytest.mark.parametrize(
    ("action", "fields", "problem"),
    [
        ("respond", {"text": "好", "channel": "朋友圈"}, "channel"),
        ("respond", {"text": "好", "channel": "政府网站", "link": "javascript:alert(1)"}, "link"),
        ("respond", {"text": "  ", "channel": "政府网站"}, "text: required"),
        ("respond", {"text": "x" * 10_001, "channel": "其他"}, "text: at most"),
        ("request_transfer", {"department": "nowhere", "reason": "r"}, "unknown department"),
        ("request_transfer", {"department": "environment", "reason": "r"}, "already"),
        ("request_transfer", {"department": "education"}, "reason: required"),
        ("acknowledge", {"colour": "red"}, "no field colour"),
        ("acknowledge", {"reason": 5}, "must be a string"),
    ],
)
def test_bad_fields_are_422(
    session: Session,
    alert_in: Callable[[str], models.Alert],
    deadlines: DeadlineCalculator,
    action: str,
    fields: dict,
    problem: str,
) -> None:
    alert = alert_in("new")
    with pytest.raises(QueueError) as err:
        act(session, alert.id, DEPT, action, deadlines=deadlines, **fields)
    assert err.value.status == 422
    assert problem in err.value.message
    assert alert.state == "new"


def test_unknown_action_is_422(session: Session, alert_in: Callable[[str], models.Alert]) -> None:
    alert = alert_in("new")
    with pytest.raises(QueueError) as err:
        act(session, alert.id, PRESS, "delete")
    assert err.value.status == 422


# ------------------------------------------------------------------ the paths


def test_acknowledge_respond_close_with_audit(
    session: Session, make_alert: Callable[..., models.Alert], deadlines: DeadlineCalculator
) -> None:
    alert = make_alert("environment", "high")
    ack_count = metrics.TIME_TO_ACK.labels("high")._sum.get()
    t1, t2, t3 = (T0 + timedelta(minutes=m) for m in (20, 90, 120))
    act(session, alert.id, DEPT, "acknowledge", now=t1, deadlines=deadlines)
    act(
        session,
        alert.id,
        DEPT,
        "respond",
        now=t2,
        deadlines=deadlines,
        text="<script>alert(1)</script> 已处理",
        channel="政务微博",
    )
    act(session, alert.id, DEPT, "close", now=t3, deadlines=deadlines)
    session.commit()

    assert (alert.state, alert.acknowledged_at, alert.responded_at, alert.closed_at) == (
        "closed",
        t1,
        t2,
        t3,
    )
    assert metrics.TIME_TO_ACK.labels("high")._sum.get() == ack_count + 20 * 60
    [response] = alert.responses
    assert response.text == "<script>alert(1)</script> 已处理"  # stored as given
    assert (response.channel, response.source, response.actor) == ("政务微博", "department", "env1")

    log = alert_log(session, alert.id)
    assert [(e.action, e.actor, e.from_state, e.to_state) for e in log] == [
        ("raise", "system", None, "new"),
        ("acknowledge", "env1", "new", "acknowledged"),
        ("respond", "env1", "acknowledged", "responded"),
        ("close", "env1", "responded", "closed"),
    ]
    assert log[2].detail["text"].startswith("<script>")
    assert [e.at for e in log[1:]] == [t1, t2, t3]


def test_respond_from_new_acknowledges_too(
    session: Session, make_alert: Callable[..., models.Alert], deadlines: DeadlineCalculator
) -> None:
    alert = make_alert("environment", "critical")
    t1 = T0 + timedelta(hours=3)
    act(
        session,
        alert.id,
        DEPT,
        "respond",
        now=t1,
        deadlines=deadlines,
        text="发布会通报",
        channel="新闻发布会",
    )
    assert (alert.state, alert.acknowledged_at, alert.responded_at) == ("responded", t1, t1)
    assert alert.press_conference_at == t1
    t2 = t1 + timedelta(hours=1)
    act(
        session,
        alert.id,
        DEPT,
        "respond",
        now=t2,
        deadlines=deadlines,
        text="续报",
        channel="政务微信",
    )
    assert alert.responded_at == t1  # the first response counts
    count = sa.select(sa.func.count()).select_from(models.AlertResponse)
    assert session.scalar(count) == 2


def test_transfer_approved_moves_the_alert(
    session: Session, make_alert: Callable[..., models.Alert], deadlines: DeadlineCalculator
) -> None:
    alert = make_alert("environment", "medium")
    due = (alert.ack_due, alert.response_due)
    act(session, alert.id, DEPT, "acknowledge", deadlines=deadlines, now=T0 + timedelta(minutes=5))
    act(
        session,
        alert.id,
        DEPT,
        "request_transfer",
        deadlines=deadlines,
        department="urban-enforcement",
        reason="占道经营属城管",
    )
    assert (alert.state, alert.transfer_to, alert.transfer_from_state) == (
        "transfer_requested",
        "urban-enforcement",
        "acknowledged",
    )
    act(session, alert.id, PRESS, "approve_transfer", deadlines=deadlines)
    session.commit()
    assert (alert.state, alert.department_id, alert.acknowledged_at) == (
        "new",
        "urban-enforcement",
        None,
    )
    assert alert.transfer_to is None
    assert (alert.ack_due, alert.response_due) == due  # passing it on buys no time
    with pytest.raises(QueueError) as err:
        get_alert(session, alert.id, DEPT)
    assert err.value.status == 404
    assert get_alert(session, alert.id, Actor("ue", "department", "urban-enforcement")) is alert
    entry = alert_log(session, alert.id)[-1]
    assert entry.action == "approve_transfer" and entry.actor == "press1"
    assert entry.detail == {
        "from_department": "environment",
        "to_department": "urban-enforcement",
        "request_reason": "占道经营属城管",
    }


def test_transfer_rejected_returns_where_it_was(
    session: Session, alert_in: Callable[[str], models.Alert], deadlines: DeadlineCalculator
) -> None:
    alert = alert_in("acknowledged")
    for _ in range(2):
        act(
            session,
            alert.id,
            DEPT,
            "request_transfer",
            deadlines=deadlines,
            department="water",
            reason="河道",
        )
        act(session, alert.id, PRESS, "reject_transfer", deadlines=deadlines, reason="属本部门")
        assert (alert.state, alert.department_id, alert.transfer_to) == (
            "acknowledged",
            "environment",
            None,
        )
    assert alert.transfer_rejections == 2
    assert alert_log(session, alert.id)[-1].detail == {
        "requested_department": "water",
        "reason": "属本部门",
    }


def test_transfer_onto_a_department_with_the_event_alert_is_409(
    session: Session, make_alert: Callable[..., models.Alert], deadlines: DeadlineCalculator
) -> None:
    alert = make_alert("environment")
    other = models.Alert(
        id="al-co",
        event_id=alert.event_id,
        department_id="water",
        role="co",
        severity="low",
        title="t",
        dedup_key=f"{alert.event_id}:water",
        ack_due=T0,
        response_due=T0,
    )
    session.add(other)
    session.flush()
    with pytest.raises(QueueError) as err:
        act(session, alert.id, PRESS, "reassign", deadlines=deadlines, department="water")
    assert err.value.status == 409
    assert alert.department_id == "environment"


def test_change_severity_recomputes_from_raise_time(
    session: Session, make_alert: Callable[..., models.Alert], deadlines: DeadlineCalculator
) -> None:
    alert = make_alert("environment", "low")
    later = T0 + timedelta(hours=6)
    act(
        session,
        alert.id,
        PRESS,
        "change_severity",
        now=later,
        deadlines=deadlines,
        severity="critical",
        reason="有人员伤亡",
    )
    expected = deadlines.due("critical", T0)
    assert (alert.ack_due, alert.response_due, alert.press_conference_due) == (
        expected.ack_due,
        expected.response_due,
        expected.press_conference_due,
    )
    assert alert.ack_due == T0 + timedelta(minutes=30)
    entry = alert_log(session, alert.id)[-1]
    assert entry.detail == {
        "from_severity": "low",
        "to_severity": "critical",
        "reason": "有人员伤亡",
    }
    with pytest.raises(QueueError) as err:
        act(session, alert.id, PRESS, "change_severity", deadlines=deadlines, severity="critical")
    assert err.value.status == 409
    with pytest.raises(QueueError) as err:
        act(session, alert.id, PRESS, "change_severity", deadlines=deadlines, severity="urgent")
    assert err.value.status == 422


def test_dismiss_and_reopen_start_a_new_round(
    session: Session, alert_in: Callable[[str], models.Alert], deadlines: DeadlineCalculator
) -> None:
    alert = alert_in("responded")
    act(
        session,
        alert.id,
        PRESS,
        "dismiss",
        now=T0 + timedelta(hours=2),
        deadlines=deadlines,
        reason="误报",
    )
    assert alert.state == "dismissed"
    reopened = T0 + timedelta(days=3)
    act(session, alert.id, PRESS, "reopen", now=reopened, deadlines=deadlines)
    assert (alert.state, alert.raised_at, alert.reopened_count) == ("new", reopened, 1)
    assert alert.acknowledged_at is alert.responded_at is alert.closed_at is None
    assert alert.response_due == deadlines.due("medium", reopened).response_due
    assert [e.action for e in alert_log(session, alert.id)][-2:] == ["dismiss", "reopen"]


def test_instruction_shows_on_the_alert(
    session: Session, alert_in: Callable[[str], models.Alert], deadlines: DeadlineCalculator
) -> None:
    alert = alert_in("closed")  # a leader may comment on any alert
    act(session, alert.id, LEADER, "instruct", deadlines=deadlines, text="举一反三")
    assert (alert.instruction, alert.instructed_by, alert.state) == (
        "举一反三",
        "leader1",
        "closed",
    )


def test_confirm_once(
    session: Session, alert_in: Callable[[str], models.Alert], deadlines: DeadlineCalculator
) -> None:
    alert = alert_in("new")
    act(session, alert.id, PRESS, "confirm", deadlines=deadlines)
    assert alert.confirmed_by == "press1"
    with pytest.raises(QueueError) as err:
        act(session, alert.id, PRESS, "confirm", deadlines=deadlines)
    assert err.value.status == 409


def test_audit_log_cannot_be_rewritten(
    session: Session, alert_in: Callable[[str], models.Alert]
) -> None:
    alert = alert_in("acknowledged")
    with pytest.raises(sa.exc.IntegrityError):
        session.execute(sa.update(models.AlertLogEntry).values(actor="someone-else"))
    session.rollback()
    assert {e.actor for e in alert_log(session, alert.id)} == {"system", "env1"}


# ------------------------------------------------------------------ crawled replies, messages


def test_crawled_reply_is_a_response_once(
    session: Session, alert_in: Callable[[str], models.Alert]
) -> None:
    alert = alert_in("acknowledged")
    at = T0 + timedelta(hours=5)
    for _ in range(2):
        record_crawled_reply(
            session, alert.id, "您好，已转相关部门处理。", at, "https://bbs.example/t/1"
        )
        session.commit()
    [response] = session.scalars(sa.select(models.AlertResponse)).all()
    assert (response.channel, response.source, response.at) == ("回复网民", "crawled", at)
    assert (alert.state, alert.responded_at) == ("responded", at)
    assert [e.action for e in alert_log(session, alert.id)].count("respond") == 1


def test_crawled_reply_from_before_the_raise_counts_at_the_raise(
    session: Session, alert_in: Callable[[str], models.Alert]
) -> None:
    """The board answered before yuqing saw the post: time to respond is 0, not negative."""
    alert = alert_in("new")
    raised = alert.raised_at or alert.created_at
    before = raised - timedelta(hours=3)
    record_crawled_reply(session, alert.id, "已回复。", before, None)
    session.commit()
    [response] = session.scalars(sa.select(models.AlertResponse)).all()
    assert response.at == raised and alert.responded_at == raised
    [entry] = [e for e in alert_log(session, alert.id) if e.action == "respond"]
    assert entry.detail["replied_at"] == before.astimezone(UTC).isoformat()


def test_change_message_carries_an_idempotent_change_id(
    session: Session, make_alert: Callable[..., models.Alert], deadlines: DeadlineCalculator
) -> None:
    alert = make_alert("environment", "high")
    created = change_message(session, alert)
    assert created.change == "created"
    assert (created.department, created.state, created.sources) == ("environment", "new", ["weibo"])
    act(session, alert.id, DEPT, "acknowledge", deadlines=deadlines)
    changed = change_message(session, alert)
    assert changed.change == "changed" and changed.state == "acknowledged"
    assert changed.change_id != created.change_id
    assert change_message(session, alert).change_id == changed.change_id
