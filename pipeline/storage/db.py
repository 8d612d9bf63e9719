"""Engines, sessions and schema migrations, for SQLite (the default) and PostgreSQL.

Every process opens the database through `make_engine`, so all of them agree on the
connection settings that matter for correctness: foreign keys enforced on SQLite, WAL so the
web app reads while stages write, a busy timeout so concurrent writers wait rather than
fail, and `pool_pre_ping` on PostgreSQL so a restarted server does not break a long-lived
stage.

Migrations are applied with `upgrade`, by `yuqing db upgrade` and by every stage at start.
Several stages may start at the same moment, so a migration run takes a lock first (an
advisory lock per schema on PostgreSQL, `BEGIN IMMEDIATE` on SQLite): the second process
waits, then finds the schema at head and does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic_core import to_json
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Alembic keeps the running migration in module globals (`alembic.context`, `alembic.op`),
#: so two threads of one process must not migrate at once; processes lock in the database.
_MIGRATION_THREAD_LOCK = threading.Lock()

#: How long a SQLite connection waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _json_dumps(value: Any) -> str:
    """JSON as stored: compact, Chinese text kept readable instead of `\\uXXXX` escapes.

    Serialised by pydantic-core (Rust): a stage writes three or four JSON columns a post,
    and `json.dumps` cost ~5-9 µs each of them."""
    return to_json(value).decode("utf-8")


def _is_sqlite_file(url: URL) -> bool:
    return (
        url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and not url.database.startswith("file:")
    )


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for `url` with yuqing's connection settings; extra kwargs go to SQLAlchemy.

    SQLite: the file's directory is created, and every connection gets WAL (readers do not
    block the writer), a busy timeout and `foreign_keys=ON` (off by default in SQLite).
    PostgreSQL: connections are checked before use, since stages hold a pool for days.
    """
    return _make_engine(sa.make_url(url), foreign_keys=True, **kwargs)


def _make_engine(url: URL, *, foreign_keys: bool, **kwargs: Any) -> Engine:
    kwargs.setdefault("json_serializer", _json_dumps)
    if url.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(url, **kwargs)

    is_file = _is_sqlite_file(url)
    if is_file:
        Path(url.database).resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, **kwargs)

    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # The timeout first, so that switching to WAL also waits for a busy file.
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if is_file:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    sa.event.listen(engine, "connect", set_pragmas)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for `engine`. Objects stay usable after commit (`expire_on_commit=False`):
    a stage commits a batch and then publishes what it wrote, without reloading every row.
    """
    return sessionmaker(engine, expire_on_commit=False)


# --- migrations -------------------------------------------------------------------------


def alembic_config(url: str | URL | None = None) -> Config:
    """Alembic configuration built in code: the migrations ship inside the package, so
    `yuqing db upgrade` works from any directory without an `alembic.ini`.

    Developers add a migration with, for example::

        from alembic import command
        command.revision(alembic_config(URL_AT_HEAD), message="add x", rev_id="0002",
                         autogenerate=True)

    and then check and edit the generated file by hand.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        rendered = sa.make_url(url).render_as_string(hide_password=False)
        # Config values go through ConfigParser interpolation, where "%" is special.
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


def migration_engine(url: str | URL) -> Engine:
    """The engine migrations run on (also used by `env.py` when Alembic is run by hand).

    On SQLite it differs from `make_engine` in two ways. Foreign keys are off, as Alembic's
    batch mode requires: it rebuilds a table by copy-and-drop, and dropping a referenced
    table with enforcement on would fail or cascade. `upgrade` runs `foreign_key_check`
    afterwards instead. And transactions are explicit `BEGIN IMMEDIATE`, so DDL is
    transactional (Python's sqlite3 would commit before each CREATE) and the write lock is
    taken before Alembic reads the current revision, serialising concurrent upgrades.
    """
    url = sa.make_url(url)
    engine = _make_engine(url, foreign_keys=False)
    if url.get_backend_name() == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def manual_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def upgrade(target: str | URL | Connection, revision: str = "head") -> None:
    """Apply migrations up to `revision`; a no-op when the database is already there.

    `target` is normally a URL. A `Connection` is used as given (the caller commits), which
    is how a test can migrate an in-memory SQLite database held by a `StaticPool`.
    """
    _run_migrations(command.upgrade, target, revision)


def downgrade(target: str | URL | Connection, revision: str = "base") -> None:
    """Revert migrations down to `revision` (`"base"`: an empty database)."""
    _run_migrations(command.downgrade, target, revision)


def _run_migrations(
    run: Callable[[Config, str], None], target: str | URL | Connection, revision: str
) -> None:
    with _MIGRATION_THREAD_LOCK:
        _run_migrations_locked(run, target, revision)


def _run_migrations_locked(
    run: Callable[[Config, str], None], target: str | URL | Connection, revision: str
) -> None:
    if isinstance(target, Connection):
        cfg = alembic_config(target.engine.url)
        cfg.attributes["connection"] = target
        run(cfg, revision)
        return

    engine = migration_engine(target)
    try:
        with engine.connect() as connection:
            cfg = alembic_config(engine.url)
            cfg.attributes["connection"] = connection
            run(cfg, revision)
            if engine.dialect.name == "sqlite":
                _check_sqlite_foreign_keys(connection)
    finally:
        engine.dispose()


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    """Fail loudly if a migration (run with enforcement off) left dangling references."""
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if problems:
        sample = ", ".join(
            f"{table} row {rowid} -> {parent}" for table, rowid, parent, _ in problems[:5]
        )
        raise RuntimeError(f"foreign key violations after migration: {sample}")


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision shipped with this code (what `upgrade` migrates to)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head
