"""Request and response bodies of the HTTP API (DESIGN: HTTP API), as pydantic models.

Responses are built from the ORM rows (`from_attributes`), so a column the API does not
name never leaks into a response; requests forbid unknown fields, so a typo is a 422
rather than a silently ignored option. Text is returned as stored: JSON carries it as
data, and whatever renders it as HTML escapes it there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from pipeline.storage.models import SEVERITIES, USER_ROLES

Severity = Literal["critical", "high", "medium", "low"]
Role = Literal["press", "department", "leader", "admin"]
assert set(Severity.__args__) == set(SEVERITIES)  # type: ignore[attr-defined]
assert set(Role.__args__) == set(USER_ROLES)  # type: ignore[attr-defined]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _column(name: str, column: str) -> AliasChoices:
    """Read `name` from the ORM's `column` (or from `name` itself, for copies)."""
    return AliasChoices(column, name)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- sign-in ----------------------------------------------------------------------------


class LoginRequest(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(_Out):
    username: str
    role: str
    department: str | None = Field(validation_alias=_column("department", "department_id"))
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


class Me(BaseModel):
    """Who the caller is; `csrf_token` (cookie sessions only) goes in `X-CSRF-Token` on
    every POST, PATCH and DELETE."""

    user: UserOut
    csrf_token: str | None = None
    expires_at: datetime | None = None


# --- alerts -----------------------------------------------------------------------------


class AlertSummary(_Out):
    id: str
    event_id: str | None
    department: str = Field(validation_alias=_column("department", "department_id"))
    role: str
    severity: str
    state: str
    title: str
    topic: str | None
    sentiment: str | None
    sources: list[str] = Field(default_factory=list)
    heat: float
    created_at: datetime
    updated_at: datetime
    ack_due: datetime
    response_due: datetime
    press_conference_due: datetime | None
    acknowledged_at: datetime | None
    responded_at: datetime | None
    closed_at: datetime | None
    overdue: bool
    transfer_to: str | None = None
    transfer_reason: str | None = None
    instruction: str | None = None
    instructed_at: datetime | None = None
    instructed_by: str | None = None
    confirmed_at: datetime | None = None
    reopened_count: int = 0


class AlertPage(BaseModel):
    items: list[AlertSummary]
    next: str | None = Field(description="cursor of the next page; null on the last")


class ClassificationOut(_Out):
    model_version: str
    policy_relevant: bool
    relevance_score: float
    departments: list[Any]
    topic: str | None
    sentiment: str
    sentiment_score: float
    sensitivity: list[Any]
    severity: str | None
    explanation: dict[str, Any]
    classified_at: datetime


class PostOut(_Out):
    id: str
    source: str
    channel: str
    url: str | None
    title: str | None
    author: str | None = Field(validation_alias=_column("author", "author_masked"))
    text: str
    truncated: bool
    published_at: datetime | None
    fetched_at: datetime
    metrics: dict[str, Any] | None
    reply: dict[str, Any] | None
    classification: ClassificationOut | None = None


class TimelinePoint(BaseModel):
    """Posts of the event per hour: how it grew."""

    hour: datetime
    posts: int
    sources: int


class EventOut(_Out):
    id: str
    title: str
    topic: str | None
    first_seen: datetime
    last_seen: datetime
    post_count: int
    source_count: int
    heat: float
    state: str
    timeline: list[TimelinePoint] = Field(default_factory=list)


class LogEntryOut(_Out):
    id: int
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    detail: dict[str, Any] | None


class ResponseOut(_Out):
    id: int
    at: datetime
    actor: str
    department: str | None = Field(validation_alias=_column("department", "department_id"))
    text: str
    channel: str
    link: str | None
    source: str


class AlertDetail(AlertSummary):
    event: EventOut | None = None
    posts: list[PostOut] = Field(
        default_factory=list, description="the event's newest posts (at most 100)"
    )
    classification: ClassificationOut | None = Field(
        None, description="current classification of the event's first post"
    )
    responses: list[ResponseOut] = Field(default_factory=list)
    log: list[LogEntryOut] = Field(default_factory=list, description="the audit log")


class NewAlert(_In):
    """A press officer's alert from a tip: text, or a URL, or both."""

    text: str | None = Field(None, max_length=100_000)
    url: str | None = Field(None, max_length=4000)
    title: str | None = Field(None, max_length=1000)
    department: str | None = None
    severity: Severity = "medium"


# --- queue actions (field names as in DESIGN; `to` is the queue's `department`) ---------


class NoFields(_In):
    pass


class Reason(_In):
    reason: str = Field(min_length=1, max_length=4000)


class OptionalReason(_In):
    reason: str = Field("", max_length=4000)


class Respond(_In):
    text: str = Field(min_length=1, max_length=20_000)
    channel: str = Field(min_length=1, max_length=32)
    link: str | None = Field(None, max_length=4000)


class Transfer(_In):
    department: str = Field(alias="to", min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=4000)


class Reassign(_In):
    department: str = Field(alias="to", min_length=1, max_length=64)
    reason: str = Field("", max_length=4000)


class Instruct(_In):
    text: str = Field(min_length=1, max_length=20_000)


class ChangeSeverity(_In):
    severity: Severity
    reason: str = Field("", max_length=4000)


# --- users and departments --------------------------------------------------------------


class NewUser(_In):
    username: str = Field(min_length=1, max_length=64)
    role: Role
    department: str | None = None
    password: str | None = Field(None, description="omitted: one is generated and returned")


class UserChange(_In):
    role: Role | None = None
    department: str | None = None
    disabled: bool | None = None


class NewPassword(_In):
    password: str | None = Field(None, description="omitted: one is generated and returned")


class UserCreated(BaseModel):
    user: UserOut
    password: str | None = Field(None, description="the generated password, shown only now")


class PasswordSet(BaseModel):
    password: str | None = Field(None, description="the generated password, shown only now")


class NewToken(_In):
    name: str = Field(min_length=1, max_length=64)


class TokenOut(_Out):
    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenIssued(BaseModel):
    token: TokenOut
    secret: str = Field(description="send as `Authorization: Bearer …`; shown only now")


class DepartmentOut(_Out):
    id: str
    name: str
    remit: list[Any]
    active: bool


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    schema_revision: str | None = None
    expected_revision: str | None = None
