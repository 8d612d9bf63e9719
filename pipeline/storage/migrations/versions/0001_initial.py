"""Initial schema: departments, posts, classifications, events, alerts, audit log, users.

Written out in full rather than imported from the models, so that this revision keeps
creating the same schema when the models move on. `alert_log` is made append-only by
triggers that reject UPDATE and DELETE (and TRUNCATE on PostgreSQL); the error is an
integrity error on both backends.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    """A timestamp column (the models read and write it through `UTCDateTime`)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=nullable
    )


def _one_of(column: str, *values: str) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


ALERT_LOG_MESSAGE = "alert_log is append-only"

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER alert_log_no_{verb.lower()} BEFORE {verb} ON alert_log
        BEGIN SELECT RAISE(ABORT, '{ALERT_LOG_MESSAGE}'); END"""
    for verb in ("UPDATE", "DELETE")
]

POSTGRESQL_TRIGGERS = [
    f"""CREATE FUNCTION alert_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{ALERT_LOG_MESSAGE}' USING ERRCODE = 'restrict_violation';
        END $$""",
    """CREATE TRIGGER alert_log_no_update_delete BEFORE UPDATE OR DELETE ON alert_log
        FOR EACH ROW EXECUTE FUNCTION alert_log_append_only()""",
    """CREATE TRIGGER alert_log_no_truncate BEFORE TRUNCATE ON alert_log
        FOR EACH STATEMENT EXECUTE FUNCTION alert_log_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        _json("remit"),
        sa.Column("active", sa.Boolean(), nullable=False),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
    )

    op.create_table(
        "posts",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("author_hash", sa.String(128), nullable=True),
        sa.Column("author_masked", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        _at("published_at", nullable=True),
        _at("fetched_at"),
        _json("metrics", nullable=True),
        _json("reply", nullable=True),
        sa.Column("snapshot", sa.LargeBinary(), nullable=True),
        _at("stored_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    op.create_index("ix_posts_source", "posts", ["source"])
    op.create_index("ix_posts_published_at", "posts", ["published_at"])
    op.create_index("ix_posts_fetched_at", "posts", ["fetched_at"])

    op.create_table(
        "classifications",
        sa.Column("post_id", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("policy_relevant", sa.Boolean(), nullable=False),
        sa.Column("relevance_score", sa.Double(), nullable=False),
        _json("departments"),
        sa.Column("topic", sa.String(128), nullable=True),
        sa.Column("sentiment", sa.String(16), nullable=False),
        sa.Column("sentiment_score", sa.Double(), nullable=False),
        _json("sensitivity"),
        sa.Column("severity", sa.String(16), nullable=True),
        _json("explanation"),
        _at("classified_at"),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_classifications_post_id_posts")
        ),
        sa.PrimaryKeyConstraint("post_id", "model_version", name=op.f("pk_classifications")),
    )
    op.create_index(
        "ix_classifications_post_id_classified_at",
        "classifications",
        ["post_id", "classified_at"],
    )

    op.create_table(
        "events",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(128), nullable=True),
        _at("first_seen"),
        _at("last_seen"),
        sa.Column("post_count", sa.Integer(), nullable=False),
        sa.Column("source_count", sa.Integer(), nullable=False),
        sa.Column("heat", sa.Double(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_last_seen", "events", ["last_seen"])
    op.create_index("ix_events_fingerprint", "events", ["fingerprint"])

    op.create_table(
        "event_posts",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("post_id", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_posts_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_event_posts_post_id_posts")
        ),
        sa.PrimaryKeyConstraint("event_id", "post_id", name=op.f("pk_event_posts")),
    )
    op.create_index("ix_event_posts_post_id", "event_posts", ["post_id"])

    op.create_table(
        "alerts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("department_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(128), nullable=True),
        sa.Column("sentiment", sa.String(16), nullable=True),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _at("ack_due"),
        _at("response_due"),
        _at("press_conference_due", nullable=True),
        _at("acknowledged_at", nullable=True),
        _at("responded_at", nullable=True),
        _at("closed_at", nullable=True),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("heat", sa.Double(), nullable=False),
        sa.CheckConstraint(_one_of("role", "lead", "co"), name=op.f("ck_alerts_role")),
        sa.CheckConstraint(
            _one_of("severity", "critical", "high", "medium", "low"),
            name=op.f("ck_alerts_severity"),
        ),
        sa.CheckConstraint(
            _one_of(
                "state",
                "new",
                "acknowledged",
                "responded",
                "closed",
                "transfer_requested",
                "dismissed",
            ),
            name=op.f("ck_alerts_state"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_alerts_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_alerts_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_alerts_dedup_key")),
    )
    op.create_index("ix_alerts_department_id_state", "alerts", ["department_id", "state"])
    op.create_index("ix_alerts_state_created_at", "alerts", ["state", "created_at"])
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_index("ix_alerts_event_id", "alerts", ["event_id"])

    op.create_table(
        "alert_log",
        # BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY auto-increments.
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", sa.String(64), nullable=True),
        _at("at"),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=True),
        _json("detail", nullable=True),
        sa.Column("event_key", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_log_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_log")),
        sa.UniqueConstraint("event_key", name=op.f("uq_alert_log_event_key")),
    )
    op.create_index("ix_alert_log_alert_id_id", "alert_log", ["alert_id", "id"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("department_id", sa.String(64), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _at("created_at"),
        _at("last_login_at", nullable=True),
        sa.CheckConstraint(
            _one_of("role", "press", "department", "leader", "admin"),
            name=op.f("ck_users_role"),
        ),
        sa.CheckConstraint(
            "role <> 'department' OR department_id IS NOT NULL",
            name=op.f("ck_users_department_user"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_users_department_id_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )

    dialect = op.get_context().dialect.name
    triggers = {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRESQL_TRIGGERS}
    if dialect not in triggers:
        raise NotImplementedError(
            f"no append-only triggers for {dialect}; use SQLite or PostgreSQL"
        )
    for statement in triggers[dialect]:
        op.execute(statement)


def downgrade() -> None:
    # Dropping the tables drops their indexes and triggers; the function is separate.
    for table in (
        "users",
        "alert_log",
        "alerts",
        "event_posts",
        "events",
        "classifications",
        "posts",
        "departments",
    ):
        op.drop_table(table)
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION alert_log_append_only()")
