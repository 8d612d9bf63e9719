"""Event fingerprints: three indexed blocks instead of six indexed bands.

Candidates are looked up by the 22-, 22- and 20-bit blocks of a SimHash and their one-bit
neighbours (`responders.events`). The bands' six indexes served no lookup any more and
cost every insert six index updates; the blocks get a column and an index each, so the
lookup is three index scans whatever the table's size. Existing rows are converted.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "event_fingerprints"
#: (low band, high band, bits of the low band) of each block.
BLOCKS = ((0, 1, 11), (2, 3, 11), (4, 5, 10))


BANDS = [f"b{i}" for i in range(6)]
BLOCK_COLUMNS = [f"block{i}" for i in range(len(BLOCKS))]


def upgrade() -> None:
    _replace(
        BANDS,
        BLOCK_COLUMNS,
        ", ".join(
            f"block{i} = b{low} + b{high} * {1 << bits}"
            for i, (low, high, bits) in enumerate(BLOCKS)
        ),
    )


def downgrade() -> None:
    _replace(
        BLOCK_COLUMNS,
        BANDS,
        ", ".join(
            f"b{low} = block{i} % {1 << bits}, b{high} = block{i} / {1 << bits}"
            for i, (low, high, bits) in enumerate(BLOCKS)
        ),
    )


def _replace(old: list[str], new: list[str], assignments: str) -> None:
    """Add the `new` integer columns, fill them by `assignments` (SQL), drop the `old`
    ones with their indexes, and index the new ones."""
    with op.batch_alter_table(TABLE) as batch:
        for name in new:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
    op.execute(f"UPDATE {TABLE} SET {assignments}")
    with op.batch_alter_table(TABLE) as batch:
        for name in old:
            batch.drop_index(f"ix_{TABLE}_{name}")
            batch.drop_column(name)
        for name in new:
            batch.alter_column(name, existing_type=sa.Integer(), nullable=False)
            batch.create_index(f"ix_{TABLE}_{name}", [name])
