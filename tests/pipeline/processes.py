"""Helpers for tests that drive the real `yuqing` command in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
YUQING = [sys.executable, "-m", "pipeline.cli"]


def base_env(data_dir: Path) -> dict[str, str]:
    """The process environment without inherited YUQING_* plus the repo's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUQING_")}
    env.update(
        YUQING_CONFIG_DIR=str(REPO / "config"),
        YUQING_DATA_DIR=str(data_dir),
        YUQING_METRICS_PORT=str(free_port()),
        PYTHONPATH=str(REPO),
    )
    return env


def yuqing(
    env: dict[str, str], *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run `yuqing ARGS` to completion, output captured."""
    return subprocess.run(
        [*YUQING, *args], env=env, input=stdin, capture_output=True, timeout=120, cwd=REPO
    )


def start(env: dict[str, str], *args: str, capture: bool = False) -> subprocess.Popen[bytes]:
    """Start `yuqing ARGS` in the background (stdout+stderr piped when `capture`)."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [*YUQING, *args], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
    )


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def post_ids(url: str) -> list[str]:
    """Stored post ids; empty while the schema does not exist yet."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT id FROM posts ORDER BY id")).scalars())
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return []
    finally:
        engine.dispose()


def count_posts(url: str) -> int:
    return len(post_ids(url))
