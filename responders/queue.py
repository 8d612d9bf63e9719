"""The department queue: who may do what to an alert in which state (DESIGN "Alert states").

`act` is the one door every person's change goes through (the web app calls it), and
`raise_or_update` the one the responder stage uses. Each checks, changes the row and
appends one `alert_log` row (who, when, action, from and to state, why) in the caller's
transaction, and never commits: the caller commits the change and its log together.

States: `new` → `acknowledged` (签收) → `responded` (回应) → `closed`; from `new` or
`acknowledged` a department may ask for a transfer (`transfer_requested`, 转办) which the
press office approves (→ `new` on the other department) or rejects (→ back where it
was); press may `dismiss` any open alert and `reopen` a closed or dismissed one (→ `new`,
a new round whose due times count from the reopen).

Who may do what (`ROLE_ACTIONS`), checked in this order — not visible: 404, role: 403,
state: 409, fields: 422:

- department: sees its own department's alerts only (another's answers 404); may
  acknowledge, respond, request_transfer, close;
- press: sees everything; may dismiss, reopen, approve_transfer, reject_transfer,
  reassign, change_severity, confirm (核实: not a false alarm), close;
- leader: sees everything; may instruct (批示) and nothing else;
- admin: sees everything, acts on nothing in the queue: IT runs users, departments,
  sources and rules, while queue decisions stay with the press office and the
  departments (least privilege; every admin action is audited elsewhere);
- system: everything (the stages: flare-up reopen, crawled replies).

Due times count from `raised_at` (creation, or the last reopen) and are recomputed from
it when the severity changes; a transfer or reassignment keeps them, so passing an
alert on never buys time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from pipeline import messages
from pipeline.storage import models
from pipeline.storage.repository import insert_rows, update_rows, write_rows_returning
from pipeline.storage.types import utcnow
from responders import metrics
from responders.deadlines import DeadlineCalculator
from responders.events import EventRow

ACTIONS = (
    "acknowledge",
    "respond",
    "request_transfer",
    "approve_transfer",
    "reject_transfer",
    "dismiss",
    "reassign",
    "reopen",
    "instruct",
    "change_severity",
    "close",
    "confirm",
)

ROLES = ("press", "department", "leader", "admin", "system")

ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "department": frozenset({"acknowledge", "respond", "request_transfer", "close"}),
    "press": frozenset(
        {
            "dismiss",
            "reopen",
            "approve_transfer",
            "reject_transfer",
            "reassign",
            "change_severity",
            "confirm",
            "close",
        }
    ),
    "leader": frozenset({"instruct"}),
    "admin": frozenset(),
    "system": frozenset(ACTIONS),
}

OPEN = frozenset(models.OPEN_ALERT_STATES)
ALL_STATES = frozenset(models.ALERT_STATES)

#: The states each action may start from.
FROM_STATES: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"new"}),
    "respond": frozenset({"new", "acknowledged", "responded"}),
    "request_transfer": frozenset({"new", "acknowledged"}),
    "approve_transfer": frozenset({"transfer_requested"}),
    "reject_transfer": frozenset({"transfer_requested"}),
    "dismiss": OPEN,
    "reassign": frozenset({"new", "acknowledged", "transfer_requested"}),
    "reopen": frozenset({"closed", "dismissed"}),
    "instruct": ALL_STATES,
    "change_severity": OPEN,
    "close": frozenset({"responded"}),
    "confirm": OPEN,
}

#: (required, optional) fields per action; every action also takes an optional `reason`.
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "acknowledge": ((), ()),
    "respond": (("text", "channel"), ("link",)),
    "request_transfer": (("department", "reason"), ()),
    "approve_transfer": ((), ()),
    "reject_transfer": (("reason",), ()),
    "dismiss": (("reason",), ()),
    "reassign": (("department",), ()),
    "reopen": ((), ()),
    "instruct": (("text",), ()),
    "change_severity": (("severity",), ()),
    "close": ((), ()),
    "confirm": ((), ()),
}

MAX_TEXT = 10_000
MAX_REASON = 2_000
MAX_LINK = 2_000
SEVERITY_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
PRESS_CONFERENCE = "新闻发布会"
CRAWLED_CHANNEL = "回复网民"


@dataclass(frozen=True)
class Actor:
    """Who acts: a logged-in user (username, role, department) or a stage (`system`)."""

    username: str
    role: str  # 'press' | 'department' | 'leader' | 'admin' | 'system'
    department_id: str | None = None


SYSTEM = Actor(models.SYSTEM_ACTOR, "system")


class QueueError(Exception):
    """A refused action; `status` is the HTTP status the web layer answers with:
    403 role may not act, 404 not found or not visible, 409 state does not allow,
    422 bad fields."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def now_utc() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def default_calculator() -> DeadlineCalculator:
    """The deadline calculator of this process's config (loaded once)."""
    from pipeline.settings import load_settings
    from responders.deadlines import load_calculator

    return load_calculator(load_settings())


# ------------------------------------------------------------------ reading


def visible(actor: Actor, stmt: sa.Select[Any]) -> sa.Select[Any]:
    """`stmt` (a select over `models.Alert`) limited to what `actor` may see."""
    if actor.role == "department":
        if not actor.department_id:
            return stmt.where(sa.false())
        return stmt.where(models.Alert.department_id == actor.department_id)
    if actor.role in ("press", "leader", "admin", "system"):
        return stmt
    return stmt.where(sa.false())


def get_alert(
    session: Session, alert_id: str, actor: Actor, *, for_update: bool = False
) -> models.Alert:
    """The alert if `actor` may see it; QueueError 404 otherwise (absent or not theirs:
    the two are indistinguishable, so ids of other departments' alerts leak nothing)."""
    stmt = visible(actor, sa.select(models.Alert).where(models.Alert.id == alert_id))
    if for_update:
        stmt = stmt.with_for_update()
    alert = session.scalars(stmt).first()
    if alert is None:
        raise QueueError(404, "alert not found")
    return alert


def alert_log(session: Session, alert_id: str) -> list[models.AlertLogEntry]:
    """The alert's audit log, oldest first."""
    return list(
        session.scalars(
            sa.select(models.AlertLogEntry)
            .where(models.AlertLogEntry.alert_id == alert_id)
            .order_by(models.AlertLogEntry.id)
        )
    )


# ------------------------------------------------------------------ messages


def alert_message(
    alert: models.Alert, change: str, change_id: str, sources: Iterable[str] | None = None
) -> messages.Alert:
    """The `alerts` topic message of `alert` (publish keyed by `alert.department_id`).

    `change_id` is the idempotency key consumers deduplicate on: `<alert id>:<log id>`
    of the audit row the change wrote (see `change_message`)."""
    if sources is None:
        event = alert.event if alert.event_id else None
        sources = (event.sources or []) if event is not None else []
    return messages.Alert(
        change_id=change_id,
        id=alert.id,
        event_id=alert.event_id,
        change=change,  # type: ignore[arg-type]
        department=alert.department_id,
        severity=alert.severity,  # type: ignore[arg-type]
        state=alert.state,  # type: ignore[arg-type]
        title=alert.title,
        topic=alert.topic,
        sentiment=alert.sentiment,  # type: ignore[arg-type]
        sources=list(sources),
        heat=alert.heat,
        created_at=alert.created_at,
        ack_due=alert.ack_due,
        response_due=alert.response_due,
        overdue=alert.overdue,
    )


def change_id(alert_id: str, log_id: int) -> str:
    return f"{alert_id}:{log_id}"


def change_message(session: Session, alert: models.Alert) -> messages.Alert:
    """The message for the latest change of `alert` (call after `act`, before or after
    commit): change id from its newest audit row, `created` if that row raised it."""
    entry = session.scalars(
        sa.select(models.AlertLogEntry)
        .where(models.AlertLogEntry.alert_id == alert.id)
        .order_by(models.AlertLogEntry.id.desc())
        .limit(1)
    ).first()
    if entry is None:
        raise ValueError(f"alert {alert.id} has no audit log")
    kind = "created" if entry.action == "raise" else "changed"
    return alert_message(alert, kind, change_id(alert.id, entry.id))


# ------------------------------------------------------------------ acting


def act(
    session: Session,
    alert_id: str,
    actor: Actor,
    action: str,
    *,
    now: datetime | None = None,
    deadlines: DeadlineCalculator | None = None,
    **fields: Any,
) -> models.Alert:
    """Apply `action` by `actor` to the alert, with its audit row; the caller commits.

    Fields: respond(text, channel, link=None); request_transfer(department, reason);
    reject_transfer(reason); dismiss(reason); reassign(department, reason=None);
    reopen(reason=None); instruct(text); change_severity(severity, reason=None); any
    action takes an optional `reason`. Raises QueueError (404, 403, 409, 422)."""
    if action not in ACTIONS:
        raise QueueError(422, f"unknown action {action!r}")
    if actor.role not in ROLES:
        raise QueueError(403, f"unknown role {actor.role!r}")
    alert = get_alert(session, alert_id, actor, for_update=True)
    if action not in ROLE_ACTIONS[actor.role]:
        raise QueueError(403, f"role {actor.role} may not {action.replace('_', ' ')}")
    if alert.state not in FROM_STATES[action]:
        raise QueueError(409, f"cannot {action.replace('_', ' ')} an alert that is {alert.state}")
    values = _validate(session, alert, action, fields)
    now = now or now_utc()
    from_state = alert.state
    detail = _HANDLERS[action](
        _Context(session, alert, actor, now, deadlines or default_calculator()), values
    )
    if values.get("reason"):
        detail.setdefault("reason", values["reason"])
    write_log(session, alert, action, actor.username, from_state, detail, at=now)
    return alert


def _validate(
    session: Session, alert: models.Alert, action: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    required, optional = FIELDS[action]
    allowed = {*required, *optional, "reason"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise QueueError(422, f"{action} takes no field {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name in allowed:
        value = fields.get(name)
        if isinstance(value, str):
            value = value.strip() or None
        if value is None:
            if name in required:
                raise QueueError(422, f"{name}: required")
            continue
        if not isinstance(value, str):
            raise QueueError(422, f"{name}: must be a string")
        values[name] = value
    _check_lengths(values)
    if "channel" in values and values["channel"] not in models.RESPONSE_CHANNELS:
        raise QueueError(422, f"channel: must be one of {', '.join(models.RESPONSE_CHANNELS)}")
    if "link" in values:
        parts = urlsplit(values["link"])
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise QueueError(422, "link: expected an absolute http(s) URL")
    if "severity" in values and values["severity"] not in models.SEVERITIES:
        raise QueueError(422, f"severity: must be one of {', '.join(models.SEVERITIES)}")
    if "department" in values:
        _check_department(session, alert, values["department"])
    return values


def _check_lengths(values: Mapping[str, str]) -> None:
    limits = {"text": MAX_TEXT, "reason": MAX_REASON, "link": MAX_LINK}
    for name, limit in limits.items():
        if len(values.get(name, "")) > limit:
            raise QueueError(422, f"{name}: at most {limit} characters")


def _check_department(session: Session, alert: models.Alert, department: str) -> None:
    row = session.get(models.Department, department)
    if row is None or not row.active:
        raise QueueError(422, f"department: unknown department {department!r}")
    if department == alert.department_id:
        raise QueueError(422, "department: the alert is already with that department")


def _check_free(session: Session, alert: models.Alert, department: str) -> None:
    """One alert per event per department: moving onto a department that already has
    this event's alert would make two."""
    if alert.event_id is None:
        return
    other = session.scalars(
        sa.select(models.Alert.id).where(
            models.Alert.event_id == alert.event_id,
            models.Alert.department_id == department,
            models.Alert.id != alert.id,
        )
    ).first()
    if other is not None:
        raise QueueError(409, f"{department} already has this event's alert {other}")


def write_log(
    session: Session,
    alert: models.Alert,
    action: str,
    actor: str,
    from_state: str | None,
    detail: Mapping[str, Any] | None,
    *,
    at: datetime,
    event_key: str | None = None,
) -> int | None:
    """Append the audit row of a change to `alert` (flushing the alert first, so the row
    can reference it); returns its id, or None when `event_key` was logged before."""
    session.flush()
    rows = write_rows_returning(
        session,
        models.AlertLogEntry,
        [
            {
                "alert_id": alert.id,
                "at": at,
                "actor": actor,
                "action": action,
                "from_state": from_state,
                "to_state": alert.state,
                "detail": dict(detail) if detail else None,
                "event_key": event_key,
            }
        ],
        ["id"],
        conflict=("event_key",),
    )
    return rows[0].id if rows else None


@dataclass
class _Context:
    session: Session
    alert: models.Alert
    actor: Actor
    now: datetime
    deadlines: DeadlineCalculator


def raised_at(alert: models.Alert) -> datetime:
    """Start of the alert's current round: due times count from here."""
    return alert.raised_at or alert.created_at


def set_deadlines(alert: models.Alert, deadlines: DeadlineCalculator) -> None:
    """Due times of the alert's severity from the start of its round."""
    due = deadlines.due(alert.severity, raised_at(alert))
    alert.ack_due = due.ack_due
    alert.response_due = due.response_due
    alert.press_conference_due = due.press_conference_due


def _seconds_since_raised(alert: models.Alert, now: datetime) -> float:
    return max(0.0, (now - raised_at(alert)).total_seconds())


def _clear_transfer(alert: models.Alert) -> None:
    alert.transfer_to = None
    alert.transfer_from_state = None
    alert.transfer_reason = None


def _acknowledge(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    c.alert.state = "acknowledged"
    _mark_acknowledged(c.alert, c.now)
    return {}


def _mark_acknowledged(alert: models.Alert, at: datetime) -> None:
    if alert.acknowledged_at is None:
        alert.acknowledged_at = at
        metrics.TIME_TO_ACK.labels(alert.severity).observe(_seconds_since_raised(alert, at))


def _respond(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    add_response(
        c.session,
        c.alert,
        actor=c.actor.username,
        at=c.now,
        text=values["text"],
        channel=values["channel"],
        link=values.get("link"),
        source="department",
    )
    return {"text": values["text"], "channel": values["channel"], "link": values.get("link")}


def add_response(
    session: Session,
    alert: models.Alert,
    *,
    actor: str,
    at: datetime,
    text: str,
    channel: str,
    link: str | None,
    source: str,
    dedup_key: str | None = None,
) -> None:
    """Store a response and move the alert on: a response also acknowledges, the first
    one sets `responded_at`, the first press conference `press_conference_at`."""
    session.add(
        models.AlertResponse(
            alert_id=alert.id,
            at=at,
            actor=actor,
            department_id=alert.department_id,
            text=text,
            channel=channel,
            link=link,
            source=source,
            dedup_key=dedup_key,
        )
    )
    if alert.state in ("new", "acknowledged"):
        alert.state = "responded"
    _mark_acknowledged(alert, at)
    if alert.responded_at is None:
        alert.responded_at = at
        metrics.TIME_TO_RESPOND.labels(alert.severity).observe(_seconds_since_raised(alert, at))
    if channel == PRESS_CONFERENCE and alert.press_conference_at is None:
        alert.press_conference_at = at


def _request_transfer(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    c.alert.transfer_from_state = c.alert.state
    c.alert.transfer_to = values["department"]
    c.alert.transfer_reason = values["reason"]
    c.alert.state = "transfer_requested"
    return {"from_department": c.alert.department_id, "to_department": values["department"]}


def _approve_transfer(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    target = c.alert.transfer_to
    if not target:
        raise QueueError(409, "no transfer is pending")
    row = c.session.get(models.Department, target)
    if row is None or not row.active:
        raise QueueError(409, f"department {target!r} no longer exists")
    detail = {
        "from_department": c.alert.department_id,
        "to_department": target,
        "request_reason": c.alert.transfer_reason,
    }
    _move(c, target)
    return detail


def _move(c: _Context, department: str) -> None:
    """Put the alert on `department`'s queue as new (it must acknowledge it)."""
    _check_free(c.session, c.alert, department)
    c.alert.department_id = department
    c.alert.state = "new"
    c.alert.acknowledged_at = None
    _clear_transfer(c.alert)


def _reject_transfer(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    detail = {"requested_department": c.alert.transfer_to}
    c.alert.state = c.alert.transfer_from_state or "new"
    c.alert.transfer_rejections = (c.alert.transfer_rejections or 0) + 1
    _clear_transfer(c.alert)
    return detail


def _dismiss(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    c.alert.state = "dismissed"
    c.alert.closed_at = c.now
    _clear_transfer(c.alert)
    return {}


def _reassign(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    detail = {"from_department": c.alert.department_id, "to_department": values["department"]}
    _move(c, values["department"])
    return detail


def _reopen(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    reopen(c.alert, c.now, c.deadlines)
    return {"round": c.alert.reopened_count}


def reopen(alert: models.Alert, now: datetime, deadlines: DeadlineCalculator) -> None:
    """A new round: back to `new`, due times counted from now, progress cleared (the
    audit log and the responses keep the history)."""
    alert.state = "new"
    alert.raised_at = now
    alert.reopened_count = (alert.reopened_count or 0) + 1
    alert.acknowledged_at = None
    alert.responded_at = None
    alert.closed_at = None
    alert.press_conference_at = None
    alert.closed_post_count = None
    alert.overdue = False
    set_deadlines(alert, deadlines)


def _instruct(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    c.alert.instruction = values["text"]
    c.alert.instructed_at = c.now
    c.alert.instructed_by = c.actor.username
    return {"text": values["text"]}


def _change_severity(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    old = c.alert.severity
    if values["severity"] == old:
        raise QueueError(409, f"the alert is already {old}")
    change_severity(c.alert, values["severity"], c.deadlines)
    return {"from_severity": old, "to_severity": values["severity"]}


def change_severity(alert: models.Alert, severity: str, deadlines: DeadlineCalculator) -> None:
    """New severity, due times recomputed from the start of the round (DESIGN)."""
    alert.severity = severity
    set_deadlines(alert, deadlines)


def _close(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    c.alert.state = "closed"
    c.alert.closed_at = c.now
    event = c.session.get(models.Event, c.alert.event_id) if c.alert.event_id else None
    c.alert.closed_post_count = event.post_count if event is not None else None
    return {}


def _confirm(c: _Context, values: dict[str, Any]) -> dict[str, Any]:
    if c.alert.confirmed_at is not None:
        raise QueueError(409, f"already confirmed by {c.alert.confirmed_by}")
    c.alert.confirmed_at = c.now
    c.alert.confirmed_by = c.actor.username
    return {}


_HANDLERS: dict[str, Callable[[_Context, dict[str, Any]], dict[str, Any]]] = {
    "acknowledge": _acknowledge,
    "respond": _respond,
    "request_transfer": _request_transfer,
    "approve_transfer": _approve_transfer,
    "reject_transfer": _reject_transfer,
    "dismiss": _dismiss,
    "reassign": _reassign,
    "reopen": _reopen,
    "instruct": _instruct,
    "change_severity": _change_severity,
    "close": _close,
    "confirm": _confirm,
}


# ------------------------------------------------------------------ crawled replies


def record_crawled_reply(
    session: Session, alert_id: str, text: str, at: datetime, link: str | None
) -> models.Alert:
    """A message board's official reply, crawled, recorded as a 回复网民 response.

    Idempotent: the same reply (text and time) on the same alert is stored once, so a
    re-crawl or a replay records nothing new. It moves a new or acknowledged alert to
    `responded`; in any other state it is only recorded."""
    return record_crawled_reply_change(session, alert_id, text, at, link)[0]


def record_crawled_reply_change(
    session: Session, alert_id: str, text: str, at: datetime, link: str | None
) -> tuple[models.Alert, Change | None]:
    """`record_crawled_reply`, also returning the change to publish (None: known reply)."""
    text = (text or "").strip()
    if not text:
        raise QueueError(422, "text: required")
    alert = get_alert(session, alert_id, SYSTEM, for_update=True)
    digest = hashlib.sha256(f"{text}\n{at.astimezone(UTC).isoformat()}".encode()).hexdigest()
    key = f"crawled:{alert.id}:{digest[:24]}"
    exists = session.scalars(
        sa.select(models.AlertResponse.id).where(models.AlertResponse.dedup_key == key)
    ).first()
    if exists is not None:
        return alert, None
    from_state = alert.state
    text = text[:MAX_TEXT]
    # A reply published before the alert was raised (the board answered before yuqing
    # saw the post) counts as a response at the raise: time to respond is never negative.
    replied_at = at
    at = max(at, alert.raised_at or alert.created_at)
    add_response(
        session,
        alert,
        actor=models.SYSTEM_ACTOR,
        at=at,
        text=text,
        channel=CRAWLED_CHANNEL,
        link=link,
        source="crawled",
        dedup_key=key,
    )
    detail = {
        "source": "crawled",
        "channel": CRAWLED_CHANNEL,
        "text": text,
        "link": link,
        "replied_at": replied_at.astimezone(UTC).isoformat(),
    }
    log_id = write_log(
        session, alert, "respond", models.SYSTEM_ACTOR, from_state, detail, at=at, event_key=key
    )
    return alert, (Change(alert, "changed", change_id(alert.id, log_id)) if log_id else None)


# ------------------------------------------------------------------ raising (the stage)


@dataclass
class RaiseSpec:
    """What the rules and routing decided for one (event, department)."""

    event: models.Event | EventRow
    department_id: str
    role: str  # 'lead' | 'co'
    severity: str
    title: str
    topic: str | None = None
    sentiment: str | None = None
    spike: bool = False
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    """A change the stage made: publish `alert_message(alert, kind, change_id)`."""

    alert: models.Alert
    kind: str  # 'created' | 'changed'
    change_id: str


def dedup_key(event_id: str, department_id: str) -> str:
    return f"{event_id}:{department_id}"


def find_alert(
    existing: Iterable[models.Alert], event_id: str, department_id: str
) -> models.Alert | None:
    """The event's alert for the department: raised for it (even if transferred away
    since), else the one that is on its queue now."""
    existing = list(existing)
    key = dedup_key(event_id, department_id)
    return next((a for a in existing if a.dedup_key == key), None) or next(
        (a for a in existing if a.department_id == department_id), None
    )


def alert_id_for(key: str) -> str:
    """Deterministic: a replay that raises the same alert computes the same id."""
    return "al-" + hashlib.sha256(key.encode()).hexdigest()[:24]


class StageLog:
    """Audit rows of the changes a stage makes to a batch of alerts, appended in one
    statement (`write`) rather than one per alert; each carries a deterministic
    `event_key`, so a replayed batch appends nothing and publishes nothing new."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []
        self._pending: list[tuple[models.Alert, str, str]] = []
        self._new: list[models.Alert] = []

    def created(self, alert: models.Alert) -> None:
        """A new alert: `write` inserts it with the batch's others in one statement (an
        ORM flush of thousands of new objects costs several times as much)."""
        self._new.append(alert)

    def add(
        self,
        alert: models.Alert,
        action: str,
        from_state: str | None,
        detail: Mapping[str, Any],
        *,
        at: datetime,
        event_key: str,
        kind: str = "changed",
    ) -> None:
        self._rows.append(
            {
                "alert_id": alert.id,
                "at": at,
                "actor": models.SYSTEM_ACTOR,
                "action": action,
                "from_state": from_state,
                "to_state": alert.state,
                "detail": dict(detail),
                "event_key": event_key,
            }
        )
        self._pending.append((alert, kind, event_key))

    def write(self, session: Session) -> list[Change]:
        """Write the changed alerts, insert the new ones, append the rows; the changes to
        publish, in order."""
        _write_changed_alerts(session)
        if not self._rows:
            return []
        self._insert_new(session)
        session.flush()
        ids = _append_new_entries(session, self._rows)
        changes = [
            Change(alert, kind, change_id(alert.id, ids[key]))
            for alert, kind, key in self._pending
            if key in ids
        ]
        self._rows, self._pending = [], []
        return changes

    def _insert_new(self, session: Session) -> None:
        """Insert the new alerts (a plain INSERT: a duplicate fails as an ORM flush would),
        then attach them to the session as loaded, so later changes flush as updates."""
        if not self._new:
            return
        alerts = sorted(self._new, key=lambda a: a.id)
        insert_rows(
            session,
            models.Alert,
            [{k: v for k, v in sa.inspect(a).dict.items() if k in _ALERT_COLUMNS} for a in alerts],
        )
        for alert in alerts:
            make_transient_to_detached(alert)
            session.add(alert)
        self._new = []


def _write_changed_alerts(session: Session) -> None:
    """Write the columns the batch changed on the session's alerts in one `update_rows`
    (an ORM flush sends an UPDATE per alert: a third of a batch's alerts are updated,
    mostly their heat), with `updated_at` as the flush would set it, then mark them
    written, so the flush that follows has nothing left of them."""
    rows: list[tuple[models.Alert, dict[str, Any]]] = []
    for alert in session.dirty:
        if not isinstance(alert, models.Alert):
            continue
        state = sa.inspect(alert)
        changed = {}
        for name in _ALERT_COLUMNS.difference(state.unmodified):
            added, _, deleted = state.attrs[name].history
            if added and added != deleted:
                changed[name] = added[0]
        if changed:
            changed.setdefault("updated_at", utcnow())
            rows.append((alert, {"id": alert.id, **changed}))
    if not rows:
        return
    update_rows(session, models.Alert, [row for _, row in rows])
    for alert, row in rows:
        for name, value in row.items():
            set_committed_value(alert, name, value)


_ALERT_COLUMNS = frozenset(models.Alert.__table__.c.keys())


def _append_new_entries(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Append the audit rows whose `event_key` is not logged yet, in order; their ids by
    key (none on a replay). One `INSERT ... RETURNING` for the batch."""
    written = write_rows_returning(
        session,
        models.AlertLogEntry,
        rows,
        ["event_key", "id"],
        conflict=("event_key",),
        keep_order=True,
    )
    return {key: log_id for key, log_id in written}


def raise_or_update(
    session: Session,
    spec: RaiseSpec,
    existing: Iterable[models.Alert],
    *,
    now: datetime,
    deadlines: DeadlineCalculator,
    log: StageLog,
    reopen_min_new_posts: int = 3,
) -> models.Alert | None:
    """Raise the alert of (event, department), or update the one there is.

    `existing`: the event's alerts (the caller loads them per batch). An alert that was
    transferred away still counts as this department's for the event, so routing does
    not bring it back. Updates never lower severity: it rises when the rules compute a
    level above the one they computed before (so a press officer's manual lowering
    holds until the event really gets worse). A closed alert whose event gained
    `reopen_min_new_posts` posts since closing, or spiked, is reopened (flare-up); a
    dismissed one is left alone: press judged it a false alarm. Heat is kept current
    without a log row or message. Returns the alert if it was raised or changed (its
    audit row is in `log`; `log.write` stores a new alert with the batch's others and
    gives the change to publish), else None."""
    alert = find_alert(existing, spec.event.id, spec.department_id)
    if alert is None:
        key = dedup_key(spec.event.id, spec.department_id)
        return _create(session, spec, key, now, deadlines, log)
    alert.heat = spec.event.heat
    if alert.state == "closed":
        grown = spec.event.post_count - (alert.closed_post_count or spec.event.post_count)
        if grown >= reopen_min_new_posts or spec.spike:
            return _flare_up(alert, spec, grown, now, deadlines, log)
        return None
    if alert.state == "dismissed":
        return None
    return _maybe_raise_severity(alert, spec, now, deadlines, log)


def _create(
    session: Session,
    spec: RaiseSpec,
    key: str,
    now: datetime,
    deadlines: DeadlineCalculator,
    log: StageLog,
) -> models.Alert:
    due = deadlines.due(spec.severity, now)
    alert = _new_alert(
        id=alert_id_for(key),
        event_id=spec.event.id,
        department_id=spec.department_id,
        role=spec.role,
        severity=spec.severity,
        state="new",
        title=spec.title[:500],
        topic=spec.topic,
        sentiment=spec.sentiment,
        dedup_key=key,
        created_at=now,
        updated_at=now,
        raised_at=now,
        ack_due=due.ack_due,
        response_due=due.response_due,
        press_conference_due=due.press_conference_due,
        heat=spec.event.heat,
        rule_severity=spec.severity,
        overdue=False,
        transfer_rejections=0,
        reopened_count=0,
    )
    log.created(alert)
    detail = {"severity": spec.severity, "role": spec.role, "reasons": spec.reasons}
    log.add(alert, "raise", None, detail, at=now, event_key=f"raise:{alert.id}", kind="created")
    return alert


def _new_alert(**values: Any) -> models.Alert:
    """A new Alert with these column values, without the ORM's per-attribute events
    (`models.Alert(**values)` fires one per column, several times the cost of filling
    the dict, and a batch raises hundreds). Only for `StageLog`: it inserts the row
    itself and then attaches the object as loaded, so the values need no tracking."""
    alert: models.Alert = _ALERT_MANAGER.new_instance()
    alert.__dict__.update(values)
    return alert


_ALERT_MANAGER = sa.inspect(models.Alert).class_manager


def _flare_up(
    alert: models.Alert,
    spec: RaiseSpec,
    grown: int,
    now: datetime,
    deadlines: DeadlineCalculator,
    log: StageLog,
) -> models.Alert:
    from_state = alert.state
    reopen(alert, now, deadlines)
    if _rank(spec.severity) > _rank(alert.severity):
        change_severity(alert, spec.severity, deadlines)
    alert.rule_severity = _higher(alert.rule_severity, spec.severity)
    detail = {
        "reason": "flare-up",
        "new_posts": grown,
        "spike": spec.spike,
        "round": alert.reopened_count,
        "severity": alert.severity,
    }
    key = f"reopen:{alert.id}:{alert.reopened_count}"
    log.add(alert, "reopen", from_state, detail, at=now, event_key=key)
    return alert


def _maybe_raise_severity(
    alert: models.Alert,
    spec: RaiseSpec,
    now: datetime,
    deadlines: DeadlineCalculator,
    log: StageLog,
) -> models.Alert | None:
    computed_before = alert.rule_severity or alert.severity
    if _rank(spec.severity) <= _rank(computed_before):
        return None
    alert.rule_severity = spec.severity
    if _rank(spec.severity) <= _rank(alert.severity):
        return None
    old = alert.severity
    change_severity(alert, spec.severity, deadlines)
    detail = {"from_severity": old, "to_severity": spec.severity, "reasons": spec.reasons}
    key = f"severity:{alert.id}:{alert.reopened_count}:{spec.severity}"
    log.add(alert, "change_severity", alert.state, detail, at=now, event_key=key)
    return alert


def _rank(severity: str | None) -> int:
    return SEVERITY_RANK.get(severity or "none", 0)


def _higher(a: str | None, b: str | None) -> str | None:
    return a if _rank(a) >= _rank(b) else b
