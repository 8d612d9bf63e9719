"""JSON columns: a missing value is SQL NULL, not the JSON value `null`.

Until now SQLAlchemy stored Python None in a JSON column as JSON `null`, which `IS
NULL` does not find: a message board's official reply, crawled after its question was
stored with none, was never filled in (`repository.upsert_posts`). `JSONType` now stores
None as SQL NULL, as PostgreSQL's batch writes do; this turns the stored `null`s of the
nullable JSON columns into SQL NULL. (The audit log's `detail` is append-only and left
as it is: it is only ever read, and None reads back either way.)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Nullable JSON columns outside the audit log (our own names, not input).
COLUMNS = [
    ("posts", "metrics"),
    ("posts", "reply"),
    ("events", "sources"),
    ("events", "watchlists"),
    ("crawl_sources", "cursor"),
]


def upgrade() -> None:
    for table, column in COLUMNS:
        op.execute(
            sa.text(
                f"UPDATE {table} SET {column} = NULL "
                f"WHERE {column} IS NOT NULL AND CAST({column} AS TEXT) = 'null'"
            )
        )


def downgrade() -> None:
    """Nothing to undo: SQL NULL reads back as None, as JSON `null` did."""
