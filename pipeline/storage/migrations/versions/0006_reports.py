"""Reports: imported history items and the weekly report archive.

History (`yuqing import history`) gets a table of its own rather than rows in `alerts`:
past items must never appear on a live queue, be escalated or be notified about. The
report reads both through one union (`responders/reports/figures.py`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _one_of(column: str, *values: str) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "history_items",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("department_id", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        _at("created_at"),
        _at("ack_due"),
        _at("response_due"),
        _at("acknowledged_at", nullable=True),
        _at("responded_at", nullable=True),
        _at("closed_at", nullable=True),
        _at("imported_at"),
        sa.CheckConstraint(
            _one_of("severity", "critical", "high", "medium", "low"),
            name=op.f("ck_history_items_severity"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_history_items_department_id_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_items")),
    )
    op.create_index("ix_history_items_created_at", "history_items", ["created_at"])

    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        _at("generated_at"),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(_one_of("kind", "weekly"), name=op.f("ck_reports_kind")),
        sa.CheckConstraint(
            _one_of("format", "html", "pdf", "json"), name=op.f("ck_reports_format")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("kind", "period", "format", name=op.f("uq_reports_kind_period_format")),
    )


def downgrade() -> None:
    op.drop_table("reports")
    op.drop_index("ix_history_items_created_at", table_name="history_items")
    op.drop_table("history_items")
