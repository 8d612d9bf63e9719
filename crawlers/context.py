"""What one crawl carries around: its source, where posts go, its state and report.

Spiders, middlewares and pipelines reach it as `spider.ctx`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any, Protocol, Self

from scrapy.crawler import Crawler

from crawlers.config import Source
from crawlers.report import CrawlReport
from crawlers.state import CrawlState
from pipeline.bus import Producer
from pipeline.messages import TOPIC_POSTS_RAW, Post


class Sink(Protocol):
    """Where prepared posts go: the bus, or stdout for `--dry-run`."""

    def publish(self, post: Post) -> None: ...

    def flush(self) -> None: ...


class BusSink:
    """`posts.raw`, keyed by post id (a re-published post lands on the same partition)."""

    def __init__(self, producer: Producer):
        self.producer = producer

    def publish(self, post: Post) -> None:
        self.producer.publish(TOPIC_POSTS_RAW, post.to_json(), post.id.encode())

    def flush(self) -> None:
        self.producer.flush()


class JsonlSink:
    """Posts as JSON Lines (snapshot left out: it is for the evidence store, not eyes)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def publish(self, post: Post) -> None:
        data = post.model_copy(update={"snapshot": None}).to_json().decode("utf-8")
        self.stream.write(data + "\n")

    def flush(self) -> None:
        self.stream.flush()


@dataclass
class CrawlContext:
    source: Source
    salt: str
    sink: Sink
    report: CrawlReport
    #: None in a dry run: nothing is read from or written to the crawl state.
    state: CrawlState | None = None
    #: URL → (ETag, Last-Modified) of pages fetched in full, saved when the crawl ends well.
    validators: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    #: The paging cursor to start from next time (JSON APIs with `resume`).
    cursor: dict[str, Any] | None = None
    closing: bool = False


class CrawlComponent:
    """Base of the middlewares and pipelines: made by Scrapy from the crawler, they reach
    the crawl's spider (and so `spider.ctx`) through it."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    @property
    def spider(self) -> Any:
        return self.crawler.spider
