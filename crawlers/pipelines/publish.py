"""Publishes prepared posts in batches; each batch is marked seen in the crawl state
only after the bus acknowledged it (`flush`), so a crash in between re-publishes rather
than loses: at-least-once, and the sinks downstream are idempotent by post id."""

from __future__ import annotations

import logging
from typing import Any

from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro

from crawlers import settings as defaults
from crawlers.context import CrawlComponent
from crawlers.items import SeenMark
from crawlers.pipelines.dedup import seen_fingerprint
from crawlers.pipelines.prepare import PreparedPost

log = logging.getLogger(__name__)


class PublishFailed(RuntimeError):
    """The bus did not take a batch; the crawl ends as failing, nothing marked seen."""


class PublishPipeline(CrawlComponent):
    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.pending: list[PreparedPost | SeenMark] = []
        self.failed = False

    def process_item(self, item: Any) -> Any:
        if self.failed:
            return item
        self.pending.append(item)
        if sum(isinstance(i, PreparedPost) for i in self.pending) >= defaults.PUBLISH_BATCH:
            self.flush()
        return item

    def close_spider(self) -> None:
        if not self.failed:
            self.flush()

    def flush(self) -> None:
        spider = self.spider
        batch, self.pending = self.pending, []
        posts = [i for i in batch if isinstance(i, PreparedPost)]
        ctx = spider.ctx
        try:
            for prepared in posts:
                ctx.sink.publish(prepared.post)
            ctx.sink.flush()
        except Exception as exc:  # noqa: BLE001 - any transport failure ends the crawl
            self.failed = True
            spider.report.error("bus", f"{type(exc).__name__}: {exc}", logging.ERROR)
            if self.crawler.engine is not None and not ctx.closing:
                ctx.closing = True
                deferred_from_coro(self.crawler.engine.close_spider_async(reason="bus"))
            return
        spider.report.published += len(posts)
        if ctx.state is not None:
            marks = [
                (i.post.id, seen_fingerprint(i))
                if isinstance(i, PreparedPost)
                else (i.key, i.fingerprint)
                for i in batch
            ]
            ctx.state.mark_seen(marks)
