"""Alert queue: responses, transfers, instructions, reopening; event clustering state.

- `alert_responses`: every response (回应) to an alert, by the department or crawled
  from a message board's official reply;
- alert columns for the queue: the time the current round was raised (`raised_at`,
  moved by a reopen), a pending transfer (`transfer_to`, `transfer_from_state`,
  `transfer_reason`), rejected transfers, the leader's last instruction (批示), the
  press office's confirmation, reopen count, the severity the rules last computed
  (`rule_severity`), the first press conference;
- event clustering: SimHash fingerprints with their six bands (11, 11, 11, 11, 10, 10 bits)
  (`event_fingerprints`), each post's time in `event_posts.at`, the sources, severity and
  watchlist hits of an event, and posts per topic and hour for spike detection
  (`topic_hours`).

Columns added to existing tables are nullable or have a server default, and carry no
foreign key, so that SQLite can add and drop them with plain `ALTER TABLE`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = ("新闻发布会", "政府网站", "政务微博", "政务微信", "回复网民", "媒体采访", "其他")


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(
        name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=nullable
    )


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))


def _alert_columns() -> list[sa.Column]:
    """Fresh column objects each time (a Column can belong to one table only)."""
    return [
        _at("raised_at"),
        sa.Column("transfer_to", sa.String(64), nullable=True),
        sa.Column("transfer_from_state", sa.String(32), nullable=True),
        sa.Column("transfer_reason", sa.Text(), nullable=True),
        _count("transfer_rejections"),
        sa.Column("instruction", sa.Text(), nullable=True),
        _at("instructed_at"),
        sa.Column("instructed_by", sa.String(64), nullable=True),
        _at("confirmed_at"),
        sa.Column("confirmed_by", sa.String(64), nullable=True),
        _count("reopened_count"),
        sa.Column("closed_post_count", sa.Integer(), nullable=True),
        sa.Column("rule_severity", sa.String(16), nullable=True),
        _at("press_conference_at"),
    ]


def _event_columns() -> list[sa.Column]:
    return [
        _json("sources"),
        sa.Column("severity", sa.String(16), nullable=True),
        _json("watchlists"),
        _at("spike_at"),
    ]


def upgrade() -> None:
    op.create_table(
        "alert_responses",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", sa.String(64), nullable=False),
        _at("at", nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("department_id", sa.String(64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=True),
        sa.CheckConstraint(_one_of("channel", CHANNELS), name=op.f("ck_alert_responses_channel")),
        sa.CheckConstraint(
            _one_of("source", ("department", "crawled")), name=op.f("ck_alert_responses_source")
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_responses_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_responses")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_alert_responses_dedup_key")),
    )
    op.create_index("ix_alert_responses_alert_id_at", "alert_responses", ["alert_id", "at"])

    op.create_table(
        "event_fingerprints",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        *(sa.Column(f"b{i}", sa.Integer(), nullable=False) for i in range(6)),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_fingerprints_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "fingerprint", name=op.f("pk_event_fingerprints")),
    )
    for i in range(6):
        op.create_index(f"ix_event_fingerprints_b{i}", "event_fingerprints", [f"b{i}"])

    op.create_table(
        "topic_hours",
        sa.Column("topic", sa.String(128), nullable=False),
        _at("hour", nullable=False),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "hour", name=op.f("pk_topic_hours")),
    )

    for column in _alert_columns():
        op.add_column("alerts", column)
    for column in _event_columns():
        op.add_column("events", column)
    op.add_column("event_posts", _at("at"))
    op.create_index("ix_event_posts_event_id_at", "event_posts", ["event_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_event_posts_event_id_at", table_name="event_posts")
    op.drop_column("event_posts", "at")
    for column in reversed(_event_columns()):
        op.drop_column("events", column.name)
    for column in reversed(_alert_columns()):
        op.drop_column("alerts", column.name)
    for table in ("topic_hours", "event_fingerprints", "alert_responses"):
        op.drop_table(table)
