"""Alerts: the filtered list, the detail, a press officer's own alert, the queue actions.

Who may see what is the queue's rule (`queue.visible`, `queue.get_alert`): a department
user gets another department's alert as 404, exactly as one that does not exist. Asking
for a list filtered to another department is 403, since the caller named it. Every
action goes through `queue.act`, which checks role and state and writes the audit log;
this module commits and then publishes the change to the `alerts` topic.

(No `from __future__ import annotations` here: the action routes are made in a loop, and
FastAPI reads each one's body model from the live annotation.)
"""

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, HTTPException, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session, selectinload

from pipeline.messages import aware
from pipeline.storage.models import (
    ALERT_STATES,
    SENTIMENTS,
    SEVERITIES,
    Alert,
    AlertLogEntry,
    Classification,
    EventPost,
    Post,
)
from pipeline.storage.types import UTCDateTime
from responders import queue
from responders.web import schemas
from responders.web.auth import DB, Caller, Principal, require

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

#: Posts shown in an alert's detail (newest first); the event's counts cover all.
DETAIL_POSTS = 100
PAGE_MAX = 200

#: Sort keys: `name` ascending, `-name` descending; ties broken by alert id. `severity`
#: ascending puts critical first.
SORT_KEYS: dict[str, Any] = {
    "created_at": Alert.created_at,
    "updated_at": Alert.updated_at,
    "ack_due": Alert.ack_due,
    "response_due": Alert.response_due,
    "heat": Alert.heat,
    "severity": sa.case({s: i for i, s in enumerate(SEVERITIES)}, value=Alert.severity),
}
Sort = Literal[tuple(f"{sign}{key}" for key in SORT_KEYS for sign in ("-", ""))]  # type: ignore[valid-type]

#: List filters that take several values (repeated or comma-separated) and, where the
#: values are a closed set, which.
LIST_FILTERS: dict[str, tuple[Any, tuple[str, ...] | None]] = {
    "state": (Alert.state, ALERT_STATES),
    "severity": (Alert.severity, SEVERITIES),
    "department": (Alert.department_id, None),
    "topic": (Alert.topic, None),
    "sentiment": (Alert.sentiment, SENTIMENTS),
}

Values = Annotated[list[str] | None, Query(description="one or more, repeated or a,b")]


def split_values(name: str, raw: list[str] | None, allowed: tuple[str, ...] | None) -> list[str]:
    """`?x=a,b&x=c` → [a, b, c]; 422 for a value outside `allowed`."""
    values = list(dict.fromkeys(v.strip() for item in raw or () for v in item.split(",")))
    values = [v for v in values if v]
    unknown = [v for v in values if allowed is not None and v not in allowed]
    if unknown:
        raise HTTPException(
            422, f"{name}: unknown {', '.join(unknown)}; one of {', '.join(allowed or ())}"
        )
    return values


def check_departments(principal: Principal, departments: list[str]) -> None:
    """403 when a department user names a department other than its own."""
    if any(not principal.may_see_department(d) for d in departments):
        raise HTTPException(403, "you may only see your own department's alerts")


# --- list -------------------------------------------------------------------------------


def _encode_cursor(sort: str, value: Any, alert_id: str) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, alert_id], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, alert_id = json.loads(raw)
        if isinstance(SORT_KEYS[sort.lstrip("-")].type, UTCDateTime):
            value = datetime.fromisoformat(value)
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise HTTPException(422, "cursor: not a cursor of this list") from None
    if cursor_sort != sort or not isinstance(alert_id, str):
        raise HTTPException(422, "cursor: made for another sort order")
    return value, alert_id


def _as_utc(value: datetime | None) -> datetime | None:
    """A query time; without offset it is Asia/Shanghai (as everywhere in yuqing)."""
    return aware(value) if value is not None else None


def alert_filters(
    principal: Principal,
    values: dict[str, list[str] | None],
    source: list[str],
    q: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[Any]:
    """WHERE clauses of the list (and the stream) for the given query parameters."""
    clauses: list[Any] = []
    for name, (column, allowed) in LIST_FILTERS.items():
        chosen = split_values(name, values.get(name), allowed)
        if name == "department":
            check_departments(principal, chosen)
        if chosen:
            clauses.append(column.in_(chosen))
    if source:
        clauses.append(
            Alert.event_id.in_(
                sa.select(EventPost.event_id)
                .join(Post, Post.id == EventPost.post_id)
                .where(Post.source.in_(source))
            )
        )
    if q and q.strip():
        term = q.strip()
        in_posts = (
            sa.select(EventPost.event_id)
            .join(Post, Post.id == EventPost.post_id)
            .where(
                sa.or_(
                    Post.title.icontains(term, autoescape=True),
                    Post.text.icontains(term, autoescape=True),
                )
            )
        )
        clauses.append(
            sa.or_(Alert.title.icontains(term, autoescape=True), Alert.event_id.in_(in_posts))
        )
    if since is not None:
        clauses.append(Alert.created_at >= _as_utc(since))
    if until is not None:
        clauses.append(Alert.created_at < _as_utc(until))
    return clauses


def summaries(alerts: list[Alert]) -> list[schemas.AlertSummary]:
    """API form of alerts whose `event` is loaded (its `sources` fill `sources`)."""
    return [
        schemas.AlertSummary.model_validate(a).model_copy(
            update={"sources": list(a.event.sources or []) if a.event else []}
        )
        for a in alerts
    ]


@router.get("", response_model=schemas.AlertPage)
def list_alerts(
    session: DB,
    principal: Caller,
    state: Values = None,
    severity: Values = None,
    department: Values = None,
    topic: Values = None,
    sentiment: Values = None,
    source: Values = None,
    q: Annotated[str | None, Query(max_length=200, description="in titles and texts")] = None,
    since: Annotated[datetime | None, Query(description="raised at or after")] = None,
    until: Annotated[datetime | None, Query(description="raised before")] = None,
    sort: Annotated[Sort, Query()] = "-created_at",
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
) -> schemas.AlertPage:
    """Alerts the caller may see, newest first unless `sort` says otherwise; follow `next`
    for the next page (keyset pagination: stable while alerts keep arriving)."""
    values = {
        "state": state,
        "severity": severity,
        "department": department,
        "topic": topic,
        "sentiment": sentiment,
    }
    clauses = alert_filters(
        principal, values, split_values("source", source, None), q, since, until
    )
    descending = sort.startswith("-")
    key = SORT_KEYS[sort.lstrip("-")]
    statement = queue.visible(principal.actor(), sa.select(Alert, key.label("sort_key")))
    statement = statement.where(*clauses).options(selectinload(Alert.event))
    if cursor:
        value, after_id = _decode_cursor(cursor, sort)
        beyond = (key < value) if descending else (key > value)
        tie = (Alert.id < after_id) if descending else (Alert.id > after_id)
        statement = statement.where(sa.or_(beyond, sa.and_(key == value, tie)))
    order = (key.desc(), Alert.id.desc()) if descending else (key.asc(), Alert.id.asc())
    rows = session.execute(statement.order_by(*order).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return schemas.AlertPage(
        items=summaries([row.Alert for row in rows]),
        next=_encode_cursor(sort, last.sort_key, last.Alert.id) if last else None,
    )


# --- detail -----------------------------------------------------------------------------


#: When a post happened, for ordering an event's posts.
POST_TIME = sa.type_coerce(
    sa.func.coalesce(EventPost.at, Post.published_at, Post.fetched_at), UTCDateTime()
)


def _timeline(session: Session, event_id: str) -> list[schemas.TimelinePoint]:
    """Posts and distinct sources per hour (UTC) over the whole event."""
    rows = session.execute(
        sa.select(POST_TIME, Post.source)
        .join(Post, Post.id == EventPost.post_id)
        .where(EventPost.event_id == event_id)
    ).all()
    posts: dict[datetime, int] = defaultdict(int)
    sources: dict[datetime, set[str]] = defaultdict(set)
    for when, source in rows:
        hour = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        posts[hour] += 1
        sources[hour].add(source)
    return [
        schemas.TimelinePoint(hour=h, posts=posts[h], sources=len(sources[h]))
        for h in sorted(posts)
    ]


def _current_classifications(session: Session, post_ids: list[str]) -> dict[str, Classification]:
    newest_first = session.scalars(
        sa.select(Classification)
        .where(Classification.post_id.in_(post_ids))
        .order_by(Classification.classified_at.desc(), Classification.model_version.desc())
    )
    current: dict[str, Classification] = {}
    for row in newest_first:
        current.setdefault(row.post_id, row)
    return current


def alert_detail(session: Session, alert: Alert) -> schemas.AlertDetail:
    """The alert with its event, posts (each with its current classification), the
    classification of the post that raised it, responses and audit log."""
    (summary,) = summaries([alert])
    detail = schemas.AlertDetail(**summary.model_dump())
    if alert.event is not None:
        detail.event = schemas.EventOut.model_validate(alert.event)
        detail.event.timeline = _timeline(session, alert.event.id)
        posts = list(
            session.scalars(
                sa.select(Post)
                .join(EventPost, EventPost.post_id == Post.id)
                .where(EventPost.event_id == alert.event.id)
                .order_by(POST_TIME.desc())
                .limit(DETAIL_POSTS)
            )
        )
        current = _current_classifications(session, [p.id for p in posts])
        detail.posts = [
            schemas.PostOut.model_validate(p).model_copy(
                update={
                    "classification": schemas.ClassificationOut.model_validate(current[p.id])
                    if p.id in current
                    else None
                }
            )
            for p in posts
        ]
        first = session.scalar(
            sa.select(EventPost.post_id)
            .join(Post, Post.id == EventPost.post_id)
            .where(EventPost.event_id == alert.event.id)
            .order_by(POST_TIME.asc())
            .limit(1)
        )
        if first is not None and (first_class := _current_classifications(session, [first])):
            detail.classification = schemas.ClassificationOut.model_validate(first_class[first])
    detail.responses = [schemas.ResponseOut.model_validate(r) for r in alert.responses]
    detail.log = [
        schemas.LogEntryOut.model_validate(e)
        for e in session.scalars(
            sa.select(AlertLogEntry)
            .where(AlertLogEntry.alert_id == alert.id)
            .order_by(AlertLogEntry.id)
        )
    ]
    return detail


@router.get("/{alert_id}", response_model=schemas.AlertDetail)
def get_alert(alert_id: str, session: DB, principal: Caller) -> schemas.AlertDetail:
    """One alert in full; 404 when it does not exist or is another department's."""
    return alert_detail(session, queue.get_alert(session, alert_id, principal.actor()))


# --- a press officer's own alert --------------------------------------------------------


@router.post("", response_model=schemas.AlertDetail, status_code=201)
def raise_alert(
    body: schemas.NewAlert,
    request: Request,
    session: DB,
    principal: Annotated[Principal, require("press")],
) -> schemas.AlertDetail:
    """Raise an alert by hand from a tip (text) or a URL; to triage unless `department`."""
    from responders.web.manual import raise_manual

    alert = raise_manual(session, request.app.state.web, body, principal)
    session.commit()
    publish(request, session, alert)
    return alert_detail(session, alert)


# --- queue actions ----------------------------------------------------------------------


@dataclass(frozen=True)
class ActionRoute:
    """`POST /api/alerts/{id}/<path>` runs the queue action `action` with `body`'s fields."""

    path: str
    action: str
    body: type[BaseModel]
    summary: str


ACTION_ROUTES = (
    ActionRoute("ack", "acknowledge", schemas.NoFields, "签收: the department takes it on"),
    ActionRoute("respond", "respond", schemas.Respond, "回应: text, channel, link"),
    ActionRoute(
        "transfer",
        "request_transfer",
        schemas.Transfer,
        "转办: ask press to move it to department `to`",
    ),
    ActionRoute("close", "close", schemas.NoFields, "close a responded alert"),
    ActionRoute(
        "approve-transfer",
        "approve_transfer",
        schemas.NoFields,
        "press: approve the requested transfer",
    ),
    ActionRoute(
        "reject-transfer", "reject_transfer", schemas.Reason, "press: reject the requested transfer"
    ),
    ActionRoute("reassign", "reassign", schemas.Reassign, "press: move it to department `to`"),
    ActionRoute("dismiss", "dismiss", schemas.Reason, "press: a false alarm"),
    ActionRoute("reopen", "reopen", schemas.OptionalReason, "press: reopen a closed alert"),
    ActionRoute("severity", "change_severity", schemas.ChangeSeverity, "press: new severity"),
    ActionRoute("instruct", "instruct", schemas.Instruct, "leader: an instruction (批示)"),
    ActionRoute("confirm", "confirm", schemas.NoFields, "press: confirm it is real (核实)"),
)


def publish(request: Request, session: Session, alert: Alert) -> None:
    """The committed change (its newest audit row) to the `alerts` topic, by department."""
    web = request.app.state.web
    if web.publisher.bus is not None:
        web.publisher.publish(queue.change_message(session, alert), alert.department_id)


def perform(
    request: Request,
    session: Session,
    principal: Principal,
    alert_id: str,
    action: str,
    fields: dict[str, Any],
) -> schemas.AlertDetail:
    """Run a queue action, commit it with its audit entry, publish it, answer the alert."""
    web = request.app.state.web
    alert = queue.act(
        session, alert_id, principal.actor(), action, deadlines=web.deadlines(), **fields
    )
    session.commit()
    publish(request, session, alert)
    return alert_detail(session, queue.get_alert(session, alert.id, principal.actor()))


def _action_endpoint(route: ActionRoute) -> Callable[..., schemas.AlertDetail]:
    model = route.body
    required = any(f.is_required() for f in model.model_fields.values())
    body_default = Body() if required else Body(None)

    def endpoint(
        alert_id: str,
        request: Request,
        session: DB,
        principal: Caller,
        body: model | None = body_default,  # type: ignore[valid-type]
    ) -> schemas.AlertDetail:
        fields = body.model_dump() if body is not None else model().model_dump()
        return perform(request, session, principal, alert_id, route.action, fields)

    endpoint.__doc__ = (
        f"{route.summary}. 403 when your role may not, 404 for an alert you may not see, "
        "409 when its state does not allow it."
    )
    return endpoint


for _route in ACTION_ROUTES:
    router.add_api_route(
        f"/{{alert_id}}/{_route.path}",
        _action_endpoint(_route),
        methods=["POST"],
        response_model=schemas.AlertDetail,
        name=f"alert_{_route.action}",
        summary=_route.summary,
    )
