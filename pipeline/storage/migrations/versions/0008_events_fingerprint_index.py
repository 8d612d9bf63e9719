"""Events: no index on `fingerprint`.

No query looks events up by their fingerprint (candidates come from
`event_fingerprints`' block indexes, migration 0007), yet every event inserted or
updated outside a heap-only update wrote that index too: the responder writes an event
row for most posts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_events_fingerprint", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_fingerprint", "events", ["fingerprint"])
