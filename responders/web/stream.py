"""`GET /api/stream`: server-sent events of alerts raised and changed, for the caller only.

Fed from the audit log, not from memory: every change to an alert, by whichever process
(the responder stage, another web replica, the scheduler), appends an `alert_log` row, so
polling the log past the last id sent reaches every change on every replica. The event
id is that log id: a client that reconnects with `Last-Event-ID` resumes where it was.
Each poll filters the new rows through the queue's visibility rule and re-checks the
caller's credentials, so a logout, an expired session or a disabled user ends the stream.

Log ids come from a sequence on PostgreSQL, so a transaction that took id 10 may commit
after one that took id 11 was already sent; ids skipped over are looked for again for
`GAP_SECONDS` before they are given up (a rolled-back transaction never fills them).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import selectinload
from starlette.concurrency import run_in_threadpool

from pipeline.storage.models import Alert, AlertLogEntry
from responders import queue
from responders.web import metrics
from responders.web.alerts import Values, check_departments, split_values, summaries
from responders.web.auth import Caller, Principal, authenticate

router = APIRouter(tags=["alerts"])

GAP_SECONDS = 30.0
HEARTBEAT_SECONDS = 15.0
BATCH = 500
#: Tells the browser's EventSource how long to wait before reconnecting (ms).
RETRY_MS = 3000


@dataclass
class Cursor:
    """Where a stream is in the audit log: the highest id sent and the ids below it not
    seen yet (with when they were first missed)."""

    last_id: int
    gaps: dict[int, float] = field(default_factory=dict)

    def advance(self, ids: list[int], now: float) -> None:
        for missing in range(self.last_id + 1, max(ids, default=self.last_id)):
            self.gaps.setdefault(missing, now)
        for seen in ids:
            self.gaps.pop(seen, None)
        self.last_id = max([self.last_id, *ids])
        for missing, since in list(self.gaps.items()):
            if now - since > GAP_SECONDS:
                del self.gaps[missing]


def _start_id(request: Request, last_event_id: str | None) -> int | None:
    value = request.headers.get("last-event-id") or last_event_id
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise HTTPException(422, "Last-Event-ID: expected an audit log id") from None


def _poll(
    request: Request, principal: Principal, cursor: Cursor, departments: list[str]
) -> list[str] | None:
    """SSE frames of the changes after `cursor` the caller may see; None when the caller's
    credentials no longer hold."""
    web = request.app.state.web
    with web.sessions() as session:
        try:
            authenticate(request, session)
        except HTTPException:
            return None
        if cursor.last_id < 0:
            cursor.last_id = session.scalar(sa.select(sa.func.max(AlertLogEntry.id))) or 0
            return []
        wanted = AlertLogEntry.id > cursor.last_id
        if cursor.gaps:
            wanted = sa.or_(wanted, AlertLogEntry.id.in_(list(cursor.gaps)))
        rows = list(
            session.scalars(
                sa.select(AlertLogEntry).where(wanted).order_by(AlertLogEntry.id).limit(BATCH)
            )
        )
        cursor.advance([row.id for row in rows], time.monotonic())
        entries = [row for row in rows if row.alert_id is not None]  # not admin actions
        if not entries:
            return []
        statement = queue.visible(
            principal.actor(),
            sa.select(Alert).where(Alert.id.in_({e.alert_id for e in entries})),
        ).options(selectinload(Alert.event))
        if departments:
            statement = statement.where(Alert.department_id.in_(departments))
        alerts = session.scalars(statement).all()
        visible = dict(zip([a.id for a in alerts], summaries(list(alerts)), strict=True))
        return [
            _frame(entry, visible[entry.alert_id]) for entry in entries if entry.alert_id in visible
        ]


def _frame(entry: AlertLogEntry, alert: Any) -> str:
    data = {
        "change": "created" if entry.action == "raise" else "changed",
        "action": entry.action,
        "log_id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "alert": alert.model_dump(mode="json"),
    }
    return f"id: {entry.id}\nevent: alert\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _events(
    request: Request, principal: Principal, cursor: Cursor, departments: list[str]
) -> AsyncIterator[str]:
    poll_seconds = request.app.state.web.settings.web_stream_poll_seconds
    metrics.STREAM_CLIENTS.inc()
    try:
        yield f"retry: {RETRY_MS}\n: stream of alert changes\n\n"
        quiet_since = time.monotonic()
        while not await request.is_disconnected():
            frames = await run_in_threadpool(_poll, request, principal, cursor, departments)
            if frames is None:
                yield 'event: end\ndata: {"reason": "not logged in"}\n\n'
                return
            for frame in frames:
                yield frame
            if frames:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            await anyio.sleep(poll_seconds)
    finally:
        metrics.STREAM_CLIENTS.dec()


@router.get("/api/stream", response_class=StreamingResponse)
async def stream(
    request: Request,
    principal: Caller,
    department: Values = None,
    last_event_id: Annotated[
        str | None, Query(description="resume after this id (or the Last-Event-ID header)")
    ] = None,
) -> StreamingResponse:
    """Server-sent events (`event: alert`, JSON data with `change`, `action`, `alert`) of
    alerts raised or changed from now on (or after `Last-Event-ID`), limited to what the
    caller may see and to `department` if given (403 for another department's)."""
    departments = split_values("department", department, None)
    check_departments(principal, departments)
    start = _start_id(request, last_event_id)
    cursor = Cursor(-1 if start is None else start)
    return StreamingResponse(
        _events(request, principal, cursor, departments),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
