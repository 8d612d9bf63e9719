"""A press officer's own alert (`POST /api/alerts`): a tip or a URL seen somewhere.

The tip becomes a post (source `manual`, cleaned and masked like every stored post), an
event of its own and an alert on the named department's queue (the triage department
otherwise), with due times from the SLA and a `raise` row in the audit log naming the
officer. It is not sent through the classifier: press already judged it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from fastapi import HTTPException
from pydantic import ValidationError
from sqlalchemy.orm import Session

from pipeline import config as config_files
from pipeline.messages import Post, describe, now_utc
from pipeline.stages.persist import post_row
from pipeline.storage.models import Alert, Department, Event, EventPost
from pipeline.storage.repository import upsert_posts
from pipeline.textprep import prepare_post
from responders import queue
from responders.web.auth import Principal
from responders.web.schemas import NewAlert

if TYPE_CHECKING:
    from responders.web.app import WebState

MANUAL_SOURCE = "manual"
TITLE_CHARS = 60


def _post(body: NewAlert) -> Post:
    if not (body.text or "").strip() and not (body.url or "").strip():
        raise HTTPException(422, "give the tip's text, its URL, or both")
    try:
        post = Post(
            source=MANUAL_SOURCE,
            channel="ingest",
            url=body.url,
            title=body.title,
            text=(body.text or "").strip() or body.url or "",
        )
    except ValidationError as exc:
        raise HTTPException(422, describe(exc)) from None
    return prepare_post(post)


def raise_manual(session: Session, web: WebState, body: NewAlert, principal: Principal) -> Alert:
    """Store the tip and raise its alert (not committed)."""
    department = body.department or config_files.departments(web.settings).triage
    row = session.get(Department, department)
    if row is None or not row.active:
        raise HTTPException(422, f"department: unknown department {department!r}")
    post = _post(body)
    now = now_utc()
    title = post.title or post.text[:TITLE_CHARS]
    upsert_posts(session, [post_row(post)])
    event = Event(
        id=f"manual-{uuid.uuid4().hex[:20]}",
        title=title,
        first_seen=now,
        last_seen=now,
        post_count=1,
        source_count=1,
        heat=0.0,
        sources=[MANUAL_SOURCE],
    )
    session.add(event)
    session.flush()
    session.add(EventPost(event_id=event.id, post_id=post.id, at=now))
    key = queue.dedup_key(event.id, department)
    alert = Alert(
        id=queue.alert_id_for(key),
        event_id=event.id,
        department_id=department,
        role="lead",
        severity=body.severity,
        state="new",
        title=title,
        dedup_key=key,
        created_at=now,
        updated_at=now,
        raised_at=now,
        rule_severity=body.severity,
        overdue=False,
        transfer_rejections=0,
        reopened_count=0,
    )
    queue.set_deadlines(alert, web.deadlines())
    session.add(alert)
    queue.write_log(
        session,
        alert,
        "raise",
        principal.username,
        None,
        {"severity": body.severity, "role": "lead", "reasons": ["manual"], "url": post.url},
        at=now,
    )
    return alert
