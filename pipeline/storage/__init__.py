"""Storage: the database schema, its migrations, and the idempotent writes stages use.

Typical use in a stage::

    from pipeline.storage import make_engine, session_factory, upgrade, upsert_posts

    upgrade(settings.resolved_database_url)          # at start; a no-op when at head
    Session = session_factory(make_engine(settings.resolved_database_url))
    with Session.begin() as session:                 # one transaction per batch
        inserted = upsert_posts(session, rows)
"""

from pipeline.storage.db import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    session_factory,
    upgrade,
)
from pipeline.storage.repository import (
    append_audit,
    append_audit_entries,
    current_classification,
    current_classifications,
    upsert_classifications,
    upsert_departments,
    upsert_posts,
    write_rows,
    write_rows_returning,
)

__all__ = [
    "append_audit",
    "append_audit_entries",
    "current_classification",
    "current_classifications",
    "current_revision",
    "downgrade",
    "head_revision",
    "make_engine",
    "session_factory",
    "upgrade",
    "upsert_classifications",
    "upsert_departments",
    "upsert_posts",
    "write_rows",
    "write_rows_returning",
]
