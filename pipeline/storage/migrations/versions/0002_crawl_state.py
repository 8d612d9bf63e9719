"""Crawl state: per-source schedule and health, seen items, HTTP validators.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "crawl_sources",
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _at("last_started_at"),
        _at("last_finished_at"),
        _at("last_success_at"),
        _at("next_due_at"),
        _json("recent_counts"),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("blocked_reason", sa.Text(), nullable=True),
        _at("blocked_since"),
        _at("blocked_until"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _json("cursor", nullable=True),
        _at("updated_at", nullable=False),
        sa.CheckConstraint(
            "status IN ('never', 'ok', 'failing', 'blocked')", name=op.f("ck_crawl_sources_status")
        ),
        sa.PrimaryKeyConstraint("source_id", name=op.f("pk_crawl_sources")),
    )
    op.create_table(
        "crawl_seen",
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        _at("seen_at", nullable=False),
        sa.PrimaryKeyConstraint("source_id", "key", name=op.f("pk_crawl_seen")),
    )
    op.create_index(
        "ix_crawl_seen_source_id_fingerprint", "crawl_seen", ["source_id", "fingerprint"]
    )
    op.create_table(
        "crawl_http_cache",
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("url_hash", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        _at("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("source_id", "url_hash", name=op.f("pk_crawl_http_cache")),
    )


def downgrade() -> None:
    for table in ("crawl_http_cache", "crawl_seen", "crawl_sources"):
        op.drop_table(table)
