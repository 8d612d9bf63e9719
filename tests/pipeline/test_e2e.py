"""End to end through real processes: `yuqing ingest` → bus → `persist` → database.

Runs on the embedded bus with SQLite and on the Tansu Kafka-protocol broker with
PostgreSQL, as separate OS processes started through the real `yuqing` CLI. Workers are
killed with SIGKILL, the failure at-least-once delivery and idempotent sinks recover from.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline.processes import REPO, base_env, count_posts, post_ids, start, wait_for, yuqing

SAMPLE = REPO / "examples" / "sample.jsonl"


@pytest.fixture(params=["local+sqlite", "kafka+postgresql"])
def pipeline_env(request: pytest.FixtureRequest, isolated_env: Path, unique: str) -> dict[str, str]:
    """Environment for `yuqing` subprocesses: one transport and one database."""
    bus, db = request.param.split("+")
    env = base_env(isolated_env / "var")
    env.update(YUQING_BUS=bus, YUQING_LOG_LEVEL="INFO")
    if bus == "kafka":
        env["YUQING_KAFKA_BOOTSTRAP_SERVERS"] = request.getfixturevalue("fresh_kafka_broker")
        env["YUQING_KAFKA_SESSION_TIMEOUT_MS"] = "6000"
        env["YUQING_KAFKA_CLIENT_ID"] = f"e2e-{unique}"
    if db == "postgresql":
        env["YUQING_DATABASE_URL"] = request.getfixturevalue("pg_schema_url")
    else:
        env["YUQING_DATABASE_URL"] = f"sqlite:///{isolated_env / 'var' / 'yuqing.sqlite3'}"
    return env


def test_ingest_twice_stores_each_post_once(pipeline_env: dict[str, str]) -> None:
    url = pipeline_env["YUQING_DATABASE_URL"]
    n = sum(1 for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip())
    runner = start(pipeline_env, "run", "persist", capture=True)
    try:
        first = yuqing(pipeline_env, "ingest", str(SAMPLE))
        assert first.returncode == 0, first.stderr.decode()
        assert f"published {n} posts; 0 lines failed" in first.stderr.decode()
        wait_for(lambda: count_posts(url) == n, 60, f"{n} posts in the database")
        second = yuqing(pipeline_env, "ingest", "-", stdin=SAMPLE.read_bytes())
        assert second.returncode == 0, second.stderr.decode()
        topics = yuqing(pipeline_env, "bus", "topics").stdout.decode()
        assert f"posts.raw\tpartitions=6\trecords={2 * n}" in topics
        # Wait until persist has consumed the second copy, then check nothing doubled.
        wait_for(lambda: _group_caught_up(pipeline_env), 60, "persist to consume everything")
        assert count_posts(url) == n
    finally:
        runner.send_signal(signal.SIGTERM)
        out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 0, out.decode()[-3000:]
    assert b"all stages stopped" in out


def _group_caught_up(env: dict[str, str]) -> bool:
    code = (
        "from pipeline.settings import load_settings\n"
        "from pipeline.bus import open_bus\n"
        "with open_bus(load_settings()) as b:\n"
        "    e = b.end_offsets('posts.raw'); c = b.committed('posts.raw', 'yuqing-persist')\n"
        "    print(all((c.get(p) or 0) >= o for p, o in e.items()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, timeout=60, cwd=REPO
    )
    return out.stdout.strip() == b"True"


def test_bad_lines_are_reported_and_good_ones_published(pipeline_env: dict[str, str]) -> None:
    lines = [
        json.dumps({"source": "t", "text": "第一条"}, ensure_ascii=False).encode(),
        b"{broken",
        json.dumps({"source": "t", "text": ""}).encode(),
        b"\xff\xfe garbage",
        json.dumps({"text": "no source"}).encode(),
        json.dumps({"source": "t", "text": "第二条"}, ensure_ascii=False).encode(),
    ]
    result = yuqing(pipeline_env, "ingest", "-", stdin=b"\n".join(lines) + b"\n")
    err = result.stderr.decode()
    assert result.returncode == 1
    assert "line 2: not JSON" in err
    assert "line 3: text: must not be empty" in err
    assert "line 4: not UTF-8" in err
    assert "line 5: source: Field required" in err
    assert "published 2 posts; 4 lines failed" in err
    ok = yuqing(
        pipeline_env,
        "ingest",
        "-",
        "--source",
        "cli",
        stdin=json.dumps({"text": "no source"}).encode(),
    )
    assert ok.returncode == 0, ok.stderr.decode()


CRASHING_PERSIST = """
import os, signal, sys
from pipeline.bus import open_bus
from pipeline.runner import Runner, StageContext, ensure_topics
from pipeline.settings import load_settings
from pipeline.stages.persist import PersistStage

class CrashAfterStore(PersistStage):
    def handle(self, items):
        out = super().handle(items)   # stored and committed to the database ...
        os.kill(os.getpid(), signal.SIGKILL)  # ... but the bus offsets never are
        return out

settings = load_settings()
bus = open_bus(settings)
ensure_topics(bus, settings)
Runner(CrashAfterStore(StageContext(settings, bus)), batch_size=50).run()
"""


def test_sigkill_between_store_and_commit_loses_and_duplicates_nothing(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    url = pipeline_env["YUQING_DATABASE_URL"]
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        "".join(
            json.dumps({"source": "kill", "text": f"帖子 {i}"}, ensure_ascii=False) + "\n"
            for i in range(400)
        ),
        encoding="utf-8",
    )
    assert yuqing(pipeline_env, "db", "upgrade").returncode == 0
    assert yuqing(pipeline_env, "ingest", str(posts)).returncode == 0
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_PERSIST],
        env=pipeline_env,
        capture_output=True,
        timeout=120,
        cwd=REPO,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()[-2000:]
    stored_before = count_posts(url)
    assert 0 < stored_before < 400  # one batch stored ...
    assert not _group_caught_up(pipeline_env)  # ... and not committed
    runner = start(pipeline_env, "run", "persist")
    try:
        wait_for(lambda: _group_caught_up(pipeline_env), 90, "persist to catch up")
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(60)
    ids = post_ids(url)
    assert len(ids) == len(set(ids)) == 400


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
def test_supervisor_restarts_a_killed_worker_mid_stream(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    url = pipeline_env["YUQING_DATABASE_URL"]
    total = 6000
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        "".join(
            json.dumps({"source": "stream", "text": f"第{i}条 " + "内容" * 150}, ensure_ascii=False)
            + "\n"
            for i in range(total)
        ),
        encoding="utf-8",
    )
    runner = start(pipeline_env, "run", "persist", capture=True)
    try:
        wait_for(lambda: bool(_children(runner.pid)), 30, "the persist worker to start")
        first_worker = _children(runner.pid)[0]
        assert yuqing(pipeline_env, "ingest", str(posts)).returncode == 0
        wait_for(lambda: count_posts(url) > 0, 60, "the worker to start storing")
        os.kill(first_worker, signal.SIGKILL)  # mid-stream
        wait_for(
            lambda: _children(runner.pid) not in ([], [first_worker]),
            30,
            "the supervisor to restart the worker",
        )
        wait_for(lambda: count_posts(url) == total, 120, "every post stored")
    finally:
        runner.send_signal(signal.SIGTERM)
        out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 0
    assert b"persist exited with -9" in out
    ids = post_ids(url)
    assert len(ids) == len(set(ids)) == total
