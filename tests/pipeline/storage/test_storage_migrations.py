"""Migrations: empty to head and back, repeatable, concurrent, and in step with the models."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import StaticPool

from pipeline.storage.db import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    upgrade,
)
from pipeline.storage.models import Base

REPO = Path(__file__).resolve().parents[3]

TABLES = {
    "departments",
    "posts",
    "classifications",
    "events",
    "event_posts",
    "alerts",
    "alert_log",
    "users",
    "crawl_sources",
    "crawl_seen",
    "crawl_http_cache",
    "alert_responses",
    "event_fingerprints",
    "topic_hours",
    "sessions",
    "api_tokens",
    "login_attempts",
    "notifications",
    "notification_attempts",
    "history_items",
    "reports",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_from_empty_to_head_twice(db_url: str) -> None:
    assert current_revision(db_url) is None

    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    assert _tables(db_url) == TABLES

    upgrade(db_url)  # at head already: nothing to do, no error
    assert current_revision(db_url) == head_revision()


def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    upgrade(db_url)
    downgrade(db_url, "base")
    assert current_revision(db_url) is None
    assert _tables(db_url) == set()

    upgrade(db_url)  # the PostgreSQL trigger function was dropped too, or this would fail
    assert _tables(db_url) == TABLES


def test_models_match_migrations(db_url: str) -> None:
    """Autogenerate finds nothing to do: the models and the migrations agree."""
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_concurrent_upgrades_do_not_collide(db_url: str) -> None:
    """Stages all upgrade at start, each in its own process; the migration lock in the
    database makes all but the first wait and then find nothing to do."""
    code = "import sys; from pipeline.storage.db import upgrade; upgrade(sys.argv[1])"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, db_url],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, errors
    assert current_revision(db_url) == head_revision()


def test_concurrent_upgrades_in_threads(db_url: str) -> None:
    """Alembic is not thread-safe; `upgrade` serialises threads of one process itself."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(db_url)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current_revision(db_url) == head_revision()


def test_upgrade_on_a_given_connection() -> None:
    """An in-memory SQLite database can be migrated through its one connection."""
    engine = make_engine("sqlite://", poolclass=StaticPool)
    with engine.connect() as connection:
        upgrade(connection)
        connection.commit()
        tables = set(sa.inspect(connection).get_table_names())
    assert tables >= TABLES
    engine.dispose()


def test_fingerprint_bands_become_blocks_and_back(db_url: str) -> None:
    """0007 turns the six stored bands of each fingerprint into its three blocks, and
    its downgrade turns them back."""
    from responders.events import bands, blocks

    hashes = [0, 2**64 - 1, 0x0123456789ABCDEF, 0xFEDCBA9876543210]
    upgrade(db_url, "0006")
    engine = make_engine(db_url)
    try:
        with engine.begin() as c:
            c.execute(
                sa.text(
                    "INSERT INTO events (id, title, first_seen, last_seen, post_count, "
                    "source_count, heat, state) VALUES ('e', 't', :at, :at, 0, 0, 0, 'open')"
                ),
                {"at": "2026-11-27T00:00:00+00:00"},
            )
            for h in hashes:
                columns = {f"b{i}": band for i, band in enumerate(bands(h))}
                c.execute(
                    sa.text(
                        "INSERT INTO event_fingerprints (event_id, fingerprint, "
                        f"{', '.join(columns)}) VALUES ('e', :fp, "
                        f"{', '.join(':' + name for name in columns)})"
                    ),
                    {"fp": f"{h:016x}", **columns},
                )
        upgrade(db_url)
        with engine.connect() as c:
            rows = c.execute(
                sa.text("SELECT fingerprint, block0, block1, block2 FROM event_fingerprints")
            ).all()
        assert {fp: tuple(b) for fp, *b in rows} == {f"{h:016x}": blocks(h) for h in hashes}
        downgrade(db_url, "0006")
        with engine.connect() as c:
            rows = c.execute(
                sa.text("SELECT fingerprint, b0, b1, b2, b3, b4, b5 FROM event_fingerprints")
            ).all()
        assert {fp: tuple(b) for fp, *b in rows} == {f"{h:016x}": bands(h) for h in hashes}
    finally:
        engine.dispose()


def test_the_unused_events_fingerprint_index_goes_and_comes_back(db_url: str) -> None:
    """0008 drops `ix_events_fingerprint` (no lookup uses it); its downgrade restores it."""

    def indexes() -> set[str]:
        engine = make_engine(db_url)
        try:
            return {i["name"] for i in sa.inspect(engine).get_indexes("events")}
        finally:
            engine.dispose()

    upgrade(db_url)
    assert "ix_events_fingerprint" not in indexes() and "ix_events_last_seen" in indexes()
    downgrade(db_url, "0007")
    assert "ix_events_fingerprint" in indexes()
    upgrade(db_url)
    assert "ix_events_fingerprint" not in indexes()


def test_json_nulls_become_sql_nulls(db_url: str) -> None:
    """0009 turns the JSON `null`s that None used to be stored as into SQL NULL, so `IS
    NULL` finds a post with no reply yet; a real value stays."""
    upgrade(db_url, "0008")
    engine = make_engine(db_url)
    try:
        insert = sa.text(
            "INSERT INTO posts (id, source, channel, text, truncated, fetched_at, stored_at, "
            "reply, metrics) VALUES (:id, 's', 'ingest', 't', false, :at, :at, :reply, :metrics)"
        )
        at = "2026-11-27T00:00:00+00:00"
        with engine.begin() as c:
            c.execute(insert, {"id": "a", "at": at, "reply": "null", "metrics": "null"})
            c.execute(insert, {"id": "b", "at": at, "reply": '{"text": "已回复"}', "metrics": None})
        upgrade(db_url)
        with engine.connect() as c:
            rows = c.execute(
                sa.text("SELECT id, reply IS NULL, metrics IS NULL FROM posts ORDER BY id")
            ).all()
        assert [tuple(r) for r in rows] == [("a", True, True), ("b", False, True)]
    finally:
        engine.dispose()
