"""Notifications: the notifier's outbox and its delivery attempts.

Escalations need no table of their own: each is an `alert_log` entry whose unique
`event_key` (alert, kind, due time) is the mark that it was done.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY auto-increments.
_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _one_of(column: str, *values: str) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


KINDS = (
    "created",
    "changed",
    "ack_reminder",
    "ack_late",
    "response_reminder",
    "response_late",
    "press_conference_reminder",
    "press_conference_late",
    "renotify",
)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("next_attempt_at"),
        _at("sent_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(_one_of("kind", *KINDS), name=op.f("ck_notifications_kind")),
        sa.CheckConstraint(
            _one_of("channel", "webhook", "dingtalk", "wecom", "email"),
            name=op.f("ck_notifications_channel"),
        ),
        sa.CheckConstraint(
            _one_of("status", "pending", "sent", "failed"), name=op.f("ck_notifications_status")
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_notifications_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_notifications_idempotency_key")),
    )
    op.create_index(
        "ix_notifications_status_next_attempt_at", "notifications", ["status", "next_attempt_at"]
    )
    op.create_index("ix_notifications_alert_id", "notifications", ["alert_id"])

    op.create_table(
        "notification_attempts",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("notification_id", _BIGINT, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _at("started_at"),
        _at("finished_at", nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(
            _one_of("outcome", "sent", "error", "failed"),
            name=op.f("ck_notification_attempts_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_attempts_notification_id_notifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_attempts")),
    )
    op.create_index(
        "ix_notification_attempts_notification_id", "notification_attempts", ["notification_id"]
    )


def downgrade() -> None:
    op.drop_table("notification_attempts")
    op.drop_table("notifications")
