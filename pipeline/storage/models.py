"""The database schema: SQLAlchemy 2 declarative models, portable across SQLite and PostgreSQL.

The models are the reference for the Alembic migrations in `migrations/versions/`; a test
compares the two, so a column added here without a migration (or the reverse) fails CI.
Constraint names come from the naming convention on `Base.metadata`, so that a migration
can drop or alter a constraint by a name that is the same on every backend.

Free text that comes from outside (titles, URLs, post text, masked authors) is `Text`, so a
long value never fails an insert on PostgreSQL; identifiers and enumerations we control are
bounded `String`s. Enumerations are plain strings with CHECK constraints (not native enum
types) so a later migration can widen them with a constraint swap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from pipeline.storage.types import JSONType, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SEVERITIES = ("critical", "high", "medium", "low")
SENTIMENTS = ("negative", "neutral", "positive")
ALERT_ROLES = ("lead", "co")
ALERT_STATES = (
    "new", "acknowledged", "responded", "closed", "transfer_requested", "dismissed",
)
#: States in which an alert still waits for someone; `closed` and `dismissed` are final
#: until press reopens them.
OPEN_ALERT_STATES = ("new", "acknowledged", "responded", "transfer_requested")
USER_ROLES = ("press", "department", "leader", "admin")
#: `alert_log.actor` of entries written by stages rather than by a person.
SYSTEM_ACTOR = "system"


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK that `column` holds one of `values` (our own constants, no input)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy's documented class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


class Department(Base):
    """A responsible department, synchronised from `config/departments.yaml`.

    Kept in the database (not only in YAML) so alerts and users can reference it by foreign
    key; `active` is false for a department the config no longer lists, whose history stays.
    """

    __tablename__ = "departments"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    remit: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Post(Base):
    """A crawled or ingested post, stored once per id whatever the number of deliveries."""

    __tablename__ = "posts"
    __table_args__ = (
        sa.Index("ix_posts_source", "source"),
        sa.Index("ix_posts_published_at", "published_at"),
        sa.Index("ix_posts_fetched_at", "fetched_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(128))
    channel: Mapped[str] = mapped_column(sa.String(32))
    url: Mapped[str | None] = mapped_column(sa.Text)
    title: Mapped[str | None] = mapped_column(sa.Text)
    author_hash: Mapped[str | None] = mapped_column(sa.String(128))
    author_masked: Mapped[str | None] = mapped_column(sa.Text)
    text: Mapped[str] = mapped_column(sa.Text)
    truncated: Mapped[bool] = mapped_column(default=False)
    published_at: Mapped[datetime | None]
    fetched_at: Mapped[datetime]
    metrics: Mapped[dict[str, Any] | None]
    reply: Mapped[dict[str, Any] | None]
    #: The original page or JSON, compressed, kept as evidence for crawled posts.
    snapshot: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)

    classifications: Mapped[list[Classification]] = relationship(
        back_populates="post",
        order_by=lambda: [Classification.classified_at.desc(), Classification.model_version.desc()],
        viewonly=True,
    )


class Classification(Base):
    """One model version's verdict on one post; the newest `classified_at` is current.

    Keeping every version lets `yuqing reclassify` run a new model beside the old one and
    lets an alert show the explanation it was raised on. See `current_classifications`.
    """

    __tablename__ = "classifications"
    __table_args__ = (
        sa.Index("ix_classifications_post_id_classified_at", "post_id", "classified_at"),
    )

    post_id: Mapped[str] = mapped_column(sa.ForeignKey("posts.id"), primary_key=True)
    model_version: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    policy_relevant: Mapped[bool]
    relevance_score: Mapped[float]
    #: Ranked `[{"id": dept id, "score": float, "role": "lead" | "co"}, ...]`.
    departments: Mapped[list[Any]] = mapped_column(default=list)
    topic: Mapped[str | None] = mapped_column(sa.String(128))
    sentiment: Mapped[str] = mapped_column(sa.String(16))
    sentiment_score: Mapped[float]
    sensitivity: Mapped[list[Any]] = mapped_column(default=list)
    severity: Mapped[str | None] = mapped_column(sa.String(16))
    #: The terms that drove each decision, `{"departments": [...], "sentiment": [...]}`.
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    classified_at: Mapped[datetime] = mapped_column(default=utcnow)

    post: Mapped[Post] = relationship(back_populates="classifications", viewonly=True)


class Event(Base):
    """A cluster of posts about the same happening; alerts are raised per event."""

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_last_seen", "last_seen"),
        sa.Index("ix_events_fingerprint", "fingerprint"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    title: Mapped[str] = mapped_column(sa.Text)
    topic: Mapped[str | None] = mapped_column(sa.String(128))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    post_count: Mapped[int] = mapped_column(default=0)
    source_count: Mapped[int] = mapped_column(default=0)
    heat: Mapped[float] = mapped_column(default=0.0)
    state: Mapped[str] = mapped_column(sa.String(32), default="open")
    #: Text fingerprint for clustering, e.g. a 64-bit SimHash as 16 hex digits (a string,
    #: because an unsigned 64-bit value does not fit PostgreSQL's signed BIGINT).
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))

    posts: Mapped[list[Post]] = relationship(secondary="event_posts", viewonly=True)


class EventPost(Base):
    """Membership of a post in an event (a post belongs to at most a few events)."""

    __tablename__ = "event_posts"
    __table_args__ = (sa.Index("ix_event_posts_post_id", "post_id"),)

    event_id: Mapped[str] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    post_id: Mapped[str] = mapped_column(sa.ForeignKey("posts.id"), primary_key=True)


class Alert(Base):
    """An item on one department's queue, with its deadlines and where it stands.

    `dedup_key` makes raising idempotent: the responder derives it from what the alert is
    about (e.g. event and department), so a replayed classification finds the existing row.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        sa.CheckConstraint(_one_of("role", ALERT_ROLES), name="role"),
        sa.CheckConstraint(_one_of("severity", SEVERITIES), name="severity"),
        sa.CheckConstraint(_one_of("state", ALERT_STATES), name="state"),
        sa.Index("ix_alerts_department_id_state", "department_id", "state"),
        sa.Index("ix_alerts_state_created_at", "state", "created_at"),
        sa.Index("ix_alerts_created_at", "created_at"),
        sa.Index("ix_alerts_event_id", "event_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    event_id: Mapped[str | None] = mapped_column(sa.ForeignKey("events.id"))
    department_id: Mapped[str] = mapped_column(sa.ForeignKey("departments.id"))
    role: Mapped[str] = mapped_column(sa.String(8), default="lead")
    severity: Mapped[str] = mapped_column(sa.String(16))
    state: Mapped[str] = mapped_column(sa.String(32), default="new")
    title: Mapped[str] = mapped_column(sa.Text)
    topic: Mapped[str | None] = mapped_column(sa.String(128))
    sentiment: Mapped[str | None] = mapped_column(sa.String(16))
    dedup_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    ack_due: Mapped[datetime]
    response_due: Mapped[datetime]
    press_conference_due: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    overdue: Mapped[bool] = mapped_column(default=False)
    heat: Mapped[float] = mapped_column(default=0.0)

    department: Mapped[Department] = relationship(viewonly=True)
    event: Mapped[Event | None] = relationship(viewonly=True)


class AlertLogEntry(Base):
    """One line of the append-only audit log: every state change and admin action.

    The database itself refuses UPDATE and DELETE on this table (triggers created by the
    migration), so not even a bug in the web app can rewrite history. `event_key` makes
    entries written by at-least-once stages idempotent: the same key is stored once.
    """

    __tablename__ = "alert_log"
    __table_args__ = (sa.Index("ix_alert_log_alert_id_id", "alert_id", "id"),)

    # BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-incrementing rowid.
    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
        autoincrement=True,
    )
    alert_id: Mapped[str | None] = mapped_column(sa.ForeignKey("alerts.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(64), default=SYSTEM_ACTOR)
    action: Mapped[str] = mapped_column(sa.String(64))
    from_state: Mapped[str | None] = mapped_column(sa.String(32))
    to_state: Mapped[str | None] = mapped_column(sa.String(32))
    detail: Mapped[dict[str, Any] | None]
    event_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)


class User(Base):
    """A person who logs in to the web app; a department user belongs to one department."""

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(_one_of("role", USER_ROLES), name="role"),
        sa.CheckConstraint(
            "role <> 'department' OR department_id IS NOT NULL", name="department_user"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16))
    department_id: Mapped[str | None] = mapped_column(sa.ForeignKey("departments.id"))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
