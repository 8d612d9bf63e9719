"""Publishing: seen only after the bus acknowledged; a failed flush publishes nothing
as seen, so the next crawl sends it again; the real Kafka protocol (Tansu) works too."""

from __future__ import annotations

import pytest

from pipeline.bus.kafka import KafkaBus
from pipeline.runner import ensure_topics
from tests.crawlers.conftest import CrawlFn, Site, read_posts

RSS = """<rss version="2.0"><channel>{}</channel></rss>"""


def feed(site: Site, n: int) -> dict[str, object]:
    items = "".join(
        f"<item><title>第{i}条</title><link>{site.url(f'/n/{i}')}</link>"
        f"<description>区里第{i}条新闻的正文。</description></item>"
        for i in range(n)
    )
    site.add("/rss.xml", RSS.format(items), content_type="application/rss+xml")
    return {"id": "feed", "kind": "feed", "urls": [site.url("/rss.xml")]}


class BrokenProducer:
    def publish(self, *a: object, **k: object) -> None:
        pass

    def flush(self, timeout: float | None = None) -> None:
        raise ConnectionError("broker went away")

    def close(self) -> None:
        pass


class BrokenBus:
    def producer(self) -> BrokenProducer:
        return BrokenProducer()


def test_nothing_marked_seen_when_the_bus_fails(site: Site, crawl: CrawlFn, bus) -> None:
    src = feed(site, 3)
    failed = crawl(src, on_bus=BrokenBus())
    assert failed.status == "failing" and failed.errors["bus"] == 1 and failed.published == 0
    report = crawl(src)
    assert report.published == 3 and len(read_posts(bus)) == 3


def test_dry_run_prints_and_keeps_no_state(site: Site, crawl: CrawlFn, bus, tmp_path) -> None:
    import io
    import json

    out = io.StringIO()
    report = crawl(feed(site, 2), dry_run=True, out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert report.published == 2 and [p["title"] for p in lines] == ["第0条", "第1条"]
    assert "snapshot" not in lines[0] and lines[0]["channel"] == "feed"
    assert read_posts(bus) == []
    assert crawl(feed(site, 2)).published == 2  # the dry run marked nothing seen


@pytest.mark.kafka
@pytest.mark.slow
def test_publishes_through_kafka(site: Site, crawl: CrawlFn, kafka_broker: str, yq) -> None:
    kafka = KafkaBus(kafka_broker, client_id="crawl-test")
    try:
        ensure_topics(kafka, yq)
        src = {**feed(site, 5), "id": "kafka-feed"}
        assert crawl(src, on_bus=kafka).published == 5
        assert crawl(src, on_bus=kafka).published == 0
        posts = [
            p for p in read_posts(kafka, "crawl-kafka-reader", expect=5) if p.source == "kafka-feed"
        ]
        assert sorted(p.title for p in posts) == [f"第{i}条" for i in range(5)]
    finally:
        kafka.close()
