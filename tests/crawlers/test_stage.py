"""`yuqing crawl` and the `crawler` stage, as real processes against the sample site."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from crawlers.sample_site import SampleSite, sample_sources, serve
from pipeline.bus.local import LocalBus
from tests.pipeline.processes import base_env, start, wait_for, yuqing


@pytest.fixture
def sample_base() -> Iterator[str]:
    server = serve(SampleSite(), port=0)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def env(isolated_env: Path, sample_base: str) -> dict[str, str]:
    """`yuqing` environment with two sample sources: a timeline and an RSS feed."""
    data = yaml.safe_load(sample_sources(sample_base))
    data["sources"] = [s for s in data["sources"] if s["id"] in ("sample-weibo", "sample-news-rss")]
    path = isolated_env / "sources.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return {**base_env(isolated_env / "var"), "YUQING_SOURCES_FILE": str(path)}


def raw_count(env: dict[str, str]) -> int:
    path = Path(env["YUQING_DATA_DIR"]) / "bus.sqlite3"
    if not path.exists():
        return 0
    bus = LocalBus(path, retention_hours=24)
    try:
        return sum(bus.end_offsets("posts.raw").values()) if "posts.raw" in bus.topics() else 0
    finally:
        bus.close()


def test_crawl_command(env: dict[str, str]) -> None:
    dry = yuqing(env, "crawl", "sample-weibo", "--dry-run")
    assert dry.returncode == 0, dry.stderr.decode()
    posts = [json.loads(line) for line in dry.stdout.decode().splitlines()]
    assert len(posts) == 30 and all(p["channel"] == "json_api" for p in posts)
    assert raw_count(env) == 0

    unknown = yuqing(env, "crawl", "no-such-source")
    assert unknown.returncode == 2 and b"no source 'no-such-source'" in unknown.stderr

    real = yuqing(env, "crawl", "sample-weibo")
    assert real.returncode == 0, real.stderr.decode()
    assert b"30 published" in real.stderr and raw_count(env) == 30
    again = yuqing(env, "crawl", "sample-weibo")
    assert b" 0 published" in again.stderr and raw_count(env) == 30


@pytest.mark.slow
def test_stage_crawls_each_source_and_survives_a_restart(env: dict[str, str]) -> None:
    proc = start(env, "run", "crawler")
    try:
        wait_for(lambda: raw_count(env) >= 50, 90, "both sources crawled")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    published = raw_count(env)
    assert published == 50  # 30 timeline posts + 20 feed items, each once

    # Restarted, the stage knows from the database that nothing is due for 5 minutes.
    proc = start(env, "run", "crawler", capture=True)
    try:
        wait_for(lambda: proc.poll() is None, 5, "stage running")
        import time

        time.sleep(6)
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode()
    assert raw_count(env) == published, out
    assert "crawling sample" not in out
