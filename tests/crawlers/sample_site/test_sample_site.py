"""The sample site: every sample source crawls cleanly, GBK forum pages included, and
new posts appear over time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import yaml

from crawlers.config import SourcesFile
from crawlers.sample_site import SampleSite, sample_sources, serve
from tests.crawlers.conftest import CrawlFn, read_posts


@pytest.fixture
def sources() -> Iterator[SourcesFile]:
    server = serve(SampleSite(new_every=1.0), port=0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield SourcesFile.model_validate(yaml.safe_load(sample_sources(base)))
    server.shutdown()


@pytest.mark.slow
def test_every_sample_source_crawls_and_grows(sources: SourcesFile, crawl: CrawlFn, bus) -> None:
    started = time.monotonic()
    for source in sources.sources:
        report = crawl(source)
        assert report.status == "ok" and report.published >= 20, report.summary()
        assert not report.errors, report.summary()
    posts = read_posts(bus)
    assert {p.channel for p in posts} == {"feed", "html", "discuz", "json_api", "message_board"}
    forum = [p for p in posts if p.channel == "discuz"]
    assert any(p.floor == 1 for p in forum) and any((p.floor or 0) > 1 for p in forum)
    assert all("\ufffd" not in p.text for p in forum)  # GBK decoded, no mojibake
    assert any(p.reply for p in posts if p.channel == "message_board")
    assert len({p.id for p in posts}) == len(posts)

    time.sleep(max(0.0, 2.5 - (time.monotonic() - started)))
    weibo = sources.get("sample-weibo")
    assert crawl(weibo).published >= 1  # one new post a second
