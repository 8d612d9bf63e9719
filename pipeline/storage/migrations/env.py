"""Alembic environment: runs migrations on the connection `pipeline.storage.db` passes in.

Alembic run from the command line (with a config naming `sqlalchemy.url`) works too: then
this file opens the connection itself, through the same engine settings.
"""

from __future__ import annotations

from contextlib import nullcontext

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

from pipeline.storage.db import migration_engine
from pipeline.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """`--sql` mode: print the DDL for review instead of running it."""
    url = sa.make_url(config.get_main_option("sqlalchemy.url"))
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _lock(connection: Connection) -> None:
    """Serialise concurrent migration runs on PostgreSQL (stages all upgrade at start).

    The lock is per schema, so test runs in separate schemas do not wait for each other,
    and transaction-scoped, so it is released by the commit. On SQLite the `BEGIN
    IMMEDIATE` of `migration_engine` already holds the database's write lock.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(hashtext('yuqing-migrate:' || "
                "coalesce(current_schema(), '')))"
            )
        )


def _run_on(connection: Connection) -> None:
    # Migrate inside one transaction we own (both backends have transactional DDL here),
    # unless the caller passed a connection that is already in one; then the caller commits.
    owned = nullcontext() if connection.in_transaction() else connection.begin()
    with owned:
        _lock(connection)
        _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = migration_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
