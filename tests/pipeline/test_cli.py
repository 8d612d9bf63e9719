"""The `yuqing` command line: config check, db upgrade, bus replay, metrics, usage errors."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.pipeline.processes import REPO, base_env, count_posts, start, wait_for, yuqing


@pytest.fixture
def env(isolated_env: Path) -> dict[str, str]:
    return base_env(isolated_env / "var")


def test_help_everywhere(env: dict[str, str]) -> None:
    for args in ([], ["db"], ["bus"], ["config"], ["bus", "replay"], ["ingest"], ["run"]):
        out = yuqing(env, *args, "--help")
        assert out.returncode == 0, (args, out.stderr.decode())
        assert b"Usage" in out.stdout


def test_config_check_ok_and_broken(env: dict[str, str], tmp_path: Path) -> None:
    ok = yuqing(env, "config", "check")
    assert ok.returncode == 0, ok.stderr.decode()
    assert b"configuration OK" in ok.stdout
    broken = tmp_path / "cfg"
    broken.mkdir()
    for f in ("departments.yaml", "sla.yaml"):
        (broken / f).write_bytes((REPO / "config" / f).read_bytes())
    (broken / "yuqing.yaml").write_text("bus: carrier-pigeon\n", encoding="utf-8")
    out = yuqing({**env, "YUQING_CONFIG_DIR": str(broken)}, "config", "check")
    assert out.returncode == 1
    assert f"{broken / 'yuqing.yaml'}: bus:" in out.stderr.decode()


def test_invalid_setting_fails_at_start_with_exit_2(env: dict[str, str]) -> None:
    out = yuqing({**env, "YUQING_METRICS_PORT": "eighty"}, "bus", "topics")
    assert out.returncode == 2
    assert "environment: YUQING_METRICS_PORT:" in out.stderr.decode()
    assert b"Traceback" not in out.stderr


def test_db_upgrade_loads_departments_and_is_repeatable(env: dict[str, str]) -> None:
    for _ in range(2):
        out = yuqing(env, "db", "upgrade")
        assert out.returncode == 0, out.stderr.decode()
        assert b"39 departments loaded" in out.stdout
    url = f"sqlite:///{env['YUQING_DATA_DIR']}/yuqing.sqlite3"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = dict(conn.execute(sa.text("SELECT id, name FROM departments")).all())
    engine.dispose()
    assert names["environment"] == "区环保局" and len(names) == 39


def test_usage_errors_exit_2(env: dict[str, str]) -> None:
    assert yuqing(env, "run", "no-such-stage").returncode == 2
    assert yuqing(env, "ingest", "/no/such/file.jsonl").returncode == 2
    both = yuqing(
        env,
        "bus",
        "replay",
        "posts.raw",
        "--group",
        "g",
        "--to-offset",
        "0",
        "--to-time",
        "2026-11-01",
    )
    assert both.returncode == 2 and b"exactly one" in both.stderr


def test_replay_makes_persist_read_again_and_metrics_show_it(env: dict[str, str]) -> None:
    url = f"sqlite:///{env['YUQING_DATA_DIR']}/yuqing.sqlite3"
    lines = "".join(
        json.dumps({"source": "replay", "text": f"第{i}条"}, ensure_ascii=False) + "\n"
        for i in range(30)
    )
    assert yuqing(env, "ingest", "-", stdin=lines.encode()).returncode == 0
    unmigrated = yuqing(env, "stage", "persist")
    assert unmigrated.returncode == 2
    assert "run `yuqing db upgrade`" in unmigrated.stderr.decode()
    assert yuqing(env, "db", "upgrade").returncode == 0

    def run_persist_until_done(expected_ok: int) -> str:
        proc = start(env, "stage", "persist")
        port = env["YUQING_METRICS_PORT"]
        text = ""

        def scraped() -> bool:
            nonlocal text
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                return False
            # The batch's counters move before its timing is observed: wait for both.
            return (
                f'yuqing_stage_messages_total{{outcome="ok",stage="persist"}} {expected_ok}.0'
                in text
                and 'yuqing_stage_processing_seconds_count{stage="persist"}' in text
                and 'yuqing_consumer_lag{topic="posts.raw"}' in text
            )

        try:
            wait_for(scraped, 60, f"persist to report {expected_ok} messages")
        finally:
            proc.terminate()
            proc.wait(30)
        return text

    metrics = run_persist_until_done(30)
    assert 'yuqing_stage_processing_seconds_count{stage="persist"}' in metrics
    assert 'yuqing_consumer_lag{topic="posts.raw"}' in metrics
    assert count_posts(url) == 30
    out = yuqing(env, "bus", "replay", "posts.raw", "--group", "yuqing-persist", "--to-offset", "0")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().count("-> 0") == 6
    # A fresh process: it reads all 30 again, and the database still holds 30.
    run_persist_until_done(30)
    assert count_posts(url) == 30
    tail = yuqing(
        env,
        "bus",
        "replay",
        "posts.raw",
        "--group",
        "yuqing-persist",
        "--to-time",
        "2999-01-01T00:00:00",
    )
    assert tail.returncode == 0
    assert "-> 0" not in tail.stdout.decode()
