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
    "new",
    "acknowledged",
    "responded",
    "closed",
    "transfer_requested",
    "dismissed",
)
#: States in which an alert still waits for someone; `closed` and `dismissed` are final
#: until press reopens them.
OPEN_ALERT_STATES = ("new", "acknowledged", "responded", "transfer_requested")
USER_ROLES = ("press", "department", "leader", "admin")
#: Channels of a response (回应), DESIGN "Alert states".
RESPONSE_CHANNELS = (
    "新闻发布会",
    "政府网站",
    "政务微博",
    "政务微信",
    "回复网民",
    "媒体采访",
    "其他",
)
#: Who recorded a response: the department itself, or the crawler finding an official reply.
RESPONSE_SOURCES = ("department", "crawled")
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
    __table_args__ = (sa.Index("ix_events_last_seen", "last_seen"),)

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
    #: Distinct source ids of the event's posts (None on rows from before migration 0003).
    sources: Mapped[list[Any] | None]
    #: Highest classifier severity among the posts that pass the alert rules' relevance
    #: gate; None while no post does (the event raises no alert on its own).
    severity: Mapped[str | None] = mapped_column(sa.String(16))
    #: Watchlist rule ids that matched any of its posts.
    watchlists: Mapped[list[Any] | None]
    #: When a spike of the event's topic last bumped it.
    spike_at: Mapped[datetime | None]

    posts: Mapped[list[Post]] = relationship(secondary="event_posts", viewonly=True)


class EventFingerprint(Base):
    """A SimHash of one of an event's texts, with its three blocks (22, 22 and 20 bits)
    indexed: two 64-bit hashes within Hamming distance 5 differ in at most one bit of
    some block, so candidates are found by looking up each block and its one-bit
    neighbours (`responders.events`)."""

    __tablename__ = "event_fingerprints"
    __table_args__ = tuple(
        sa.Index(f"ix_event_fingerprints_block{i}", f"block{i}") for i in range(3)
    )

    event_id: Mapped[str] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    fingerprint: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    block0: Mapped[int]
    block1: Mapped[int]
    block2: Mapped[int]


class TopicHour(Base):
    """Posts per topic and hour (UTC, truncated), for per-topic spike detection."""

    __tablename__ = "topic_hours"

    topic: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    posts: Mapped[int]


class EventPost(Base):
    """Membership of a post in an event (a post belongs to at most a few events)."""

    __tablename__ = "event_posts"
    __table_args__ = (
        sa.Index("ix_event_posts_post_id", "post_id"),
        sa.Index("ix_event_posts_event_id_at", "event_id", "at"),
    )

    event_id: Mapped[str] = mapped_column(
        sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    post_id: Mapped[str] = mapped_column(sa.ForeignKey("posts.id"), primary_key=True)
    #: The post's time (published, else fetched), for the event's velocity.
    at: Mapped[datetime | None]


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
    # Queue state (migration 0003, `responders/queue.py`).
    #: Start of the current round, from which due times count: the creation, or the
    #: last reopen (None on rows from before 0003: `created_at`).
    raised_at: Mapped[datetime | None]
    #: A pending transfer (转办): to which department, from which state, why.
    transfer_to: Mapped[str | None] = mapped_column(sa.String(64))
    transfer_from_state: Mapped[str | None] = mapped_column(sa.String(32))
    transfer_reason: Mapped[str | None] = mapped_column(sa.Text)
    transfer_rejections: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    #: The leader's last instruction (批示); every one is in the audit log.
    instruction: Mapped[str | None] = mapped_column(sa.Text)
    instructed_at: Mapped[datetime | None]
    instructed_by: Mapped[str | None] = mapped_column(sa.String(64))
    #: The press office confirmed it is not a false alarm (核实).
    confirmed_at: Mapped[datetime | None]
    confirmed_by: Mapped[str | None] = mapped_column(sa.String(64))
    reopened_count: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    #: The event's post count when the alert was closed: a flare-up is measured from it.
    closed_post_count: Mapped[int | None]
    #: The severity the alert rules last computed; a manual change sticks until the rules
    #: compute a higher one.
    rule_severity: Mapped[str | None] = mapped_column(sa.String(16))
    #: First response on the channel 新闻发布会 (meets a critical alert's press deadline).
    press_conference_at: Mapped[datetime | None]

    department: Mapped[Department] = relationship(viewonly=True)
    event: Mapped[Event | None] = relationship(viewonly=True)
    responses: Mapped[list[AlertResponse]] = relationship(
        order_by=lambda: AlertResponse.id, viewonly=True
    )


class AlertResponse(Base):
    """A response (回应) to an alert: text, channel, link; by the department or crawled
    from a message board's official reply (`dedup_key` makes the crawled one idempotent)."""

    __tablename__ = "alert_responses"
    __table_args__ = (
        sa.CheckConstraint(_one_of("channel", RESPONSE_CHANNELS), name="channel"),
        sa.CheckConstraint(_one_of("source", RESPONSE_SOURCES), name="source"),
        sa.Index("ix_alert_responses_alert_id_at", "alert_id", "at"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    alert_id: Mapped[str] = mapped_column(sa.ForeignKey("alerts.id"))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(sa.String(64))
    department_id: Mapped[str | None] = mapped_column(sa.String(64))
    text: Mapped[str] = mapped_column(sa.Text)
    channel: Mapped[str] = mapped_column(sa.String(16))
    link: Mapped[str | None] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(16), default="department")
    dedup_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)


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
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
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


# --- crawl state (written by `crawlers/`, read by the admin pages) ------------------------

CRAWL_STATUSES = ("never", "ok", "failing", "blocked")


class CrawlSource(Base):
    """Per-source crawl state: schedule, health, cursor. One row per `sources.yaml` id.

    In the database rather than in memory so the crawler stage survives restarts (it
    crawls what is due, not everything at once) and so the admin pages can show health.
    """

    __tablename__ = "crawl_sources"
    __table_args__ = (sa.CheckConstraint(_one_of("status", CRAWL_STATUSES), name="status"),)

    source_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), default="never")
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    next_due_at: Mapped[datetime | None]
    #: Entries found per crawl, newest last (a few), for "zero where there used to be many".
    recent_counts: Mapped[list[Any]] = mapped_column(default=list)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    blocked_reason: Mapped[str | None] = mapped_column(sa.Text)
    blocked_since: Mapped[datetime | None]
    blocked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    #: Paging cursor and other spider state kept between crawls (JSON API `since_id`, …).
    cursor: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CrawlSeen(Base):
    """What a source already published: a re-crawl publishes only what is new.

    `fingerprint` tells a changed item from a seen one (a message board's official reply
    arriving later, a forum thread's reply count)."""

    __tablename__ = "crawl_seen"
    __table_args__ = (sa.Index("ix_crawl_seen_source_id_fingerprint", "source_id", "fingerprint"),)

    source_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrawlHttpCache(Base):
    """ETag and Last-Modified per fetched URL, for conditional requests (304: nothing new)."""

    __tablename__ = "crawl_http_cache"

    source_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    url_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    url: Mapped[str] = mapped_column(sa.Text)
    etag: Mapped[str | None] = mapped_column(sa.Text)
    last_modified: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- web sign-in (written and read by `responders/web/`) ----------------------------------


class WebSession(Base):
    """A logged-in browser. The cookie holds a random token; only its SHA-256 is stored, so
    a copy of the database cannot be replayed as sessions. In the database (not in memory)
    so that web replicas are interchangeable and a logout ends the session everywhere."""

    __tablename__ = "sessions"
    __table_args__ = (
        sa.Index("ix_sessions_user_id", "user_id"),
        sa.Index("ix_sessions_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for another system; stored as its SHA-256, shown once when made."""

    __tablename__ = "api_tokens"
    __table_args__ = (sa.Index("ix_api_tokens_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class LoginAttempt(Base):
    """One login try, for rate limiting per username and address across web replicas."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        sa.Index("ix_login_attempts_username_ip_at", "username", "ip", "at"),
        sa.Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    username: Mapped[str] = mapped_column(sa.String(64))
    ip: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    succeeded: Mapped[bool] = mapped_column(default=False)


# --- escalation and notifications (written by the `scheduler` and `notifier` stages) ------

#: What a notification is about: a change of the alert (from the `alerts` topic) or an
#: escalation the scheduler found due (`responders/escalation.py`).
ESCALATION_KINDS = (
    "ack_reminder",
    "ack_late",
    "response_reminder",
    "response_late",
    "press_conference_reminder",
    "press_conference_late",
    "renotify",
)
NOTIFICATION_KINDS = ("created", "changed", *ESCALATION_KINDS)
NOTIFICATION_CHANNELS = ("webhook", "dingtalk", "wecom", "email")
NOTIFICATION_STATUSES = ("pending", "sent", "failed")
ATTEMPT_OUTCOMES = ("sent", "error", "failed")


class Notification(Base):
    """One message to one target: the outbox the notifier delivers from, at least once.

    Rows are written in the same transaction as what caused them (an escalation's audit
    entry) or before the `alerts` offset is committed, so nothing is lost; the unique
    `idempotency_key` makes that write idempotent and travels with every attempt (the
    `Idempotency-Key` header, the e-mail Message-ID), so a receiver can drop a repeat.
    `next_attempt_at` is both the retry time and the lease of an attempt in flight.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        sa.CheckConstraint(_one_of("kind", NOTIFICATION_KINDS), name="kind"),
        sa.CheckConstraint(_one_of("channel", NOTIFICATION_CHANNELS), name="channel"),
        sa.CheckConstraint(_one_of("status", NOTIFICATION_STATUSES), name="status"),
        sa.Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        sa.Index("ix_notifications_alert_id", "alert_id"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    idempotency_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    alert_id: Mapped[str] = mapped_column(sa.ForeignKey("alerts.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    channel: Mapped[str] = mapped_column(sa.String(16))
    #: A target id of `config/notify.yaml` (its URL and secrets are resolved when sending).
    target: Mapped[str] = mapped_column(sa.String(64))
    #: What to say, rendered when the row was written, so a repeat says the same.
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)


class NotificationAttempt(Base):
    """One try at delivering a notification; `outcome` is NULL while it is in flight, and
    stays NULL for an attempt whose process was killed (it is repeated with the same key)."""

    __tablename__ = "notification_attempts"
    __table_args__ = (
        sa.CheckConstraint(_one_of("outcome", ATTEMPT_OUTCOMES), name="outcome"),
        sa.Index("ix_notification_attempts_notification_id", "notification_id"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    notification_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.ForeignKey("notifications.id")
    )
    attempt: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(sa.String(16))
    detail: Mapped[str | None] = mapped_column(sa.Text)


# --- reports (written by `responders/reports/`) --------------------------------------------

REPORT_KINDS = ("weekly",)
REPORT_FORMATS = ("html", "pdf", "json")


class HistoryItem(Base):
    """A past item loaded by `yuqing import history`, so a district's first reports can
    cover the months before yuqing. Kept apart from `alerts` so that it never reaches a
    queue, an escalation or a notification; the reports read both through one union."""

    __tablename__ = "history_items"
    __table_args__ = (
        sa.CheckConstraint(_one_of("severity", SEVERITIES), name="severity"),
        sa.Index("ix_history_items_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    title: Mapped[str] = mapped_column(sa.Text)
    department_id: Mapped[str] = mapped_column(sa.ForeignKey("departments.id"))
    severity: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]
    #: Due times under the SLA config at import, as a live alert raised then would get.
    ack_due: Mapped[datetime]
    response_due: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class Report(Base):
    """A generated report kept for the leaders' archive: what they read on Monday stays
    what it was, even when late responses change the figures afterwards."""

    __tablename__ = "reports"
    __table_args__ = (
        sa.CheckConstraint(_one_of("kind", REPORT_KINDS), name="kind"),
        sa.CheckConstraint(_one_of("format", REPORT_FORMATS), name="format"),
        sa.UniqueConstraint("kind", "period", "format"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: The ISO week of a weekly report, `2026-W48`.
    period: Mapped[str] = mapped_column(sa.String(16))
    format: Mapped[str] = mapped_column(sa.String(8))
    generated_at: Mapped[datetime] = mapped_column(default=utcnow)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
