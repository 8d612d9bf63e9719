"""Drops exact duplicates: an id already published (a re-crawl), the same id twice in
one crawl, or the same content under another URL. A message board message whose
official reply appeared since is not a duplicate: it goes out again with the reply."""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from crawlers.context import CrawlComponent
from crawlers.items import SeenMark
from crawlers.pipelines.prepare import PreparedPost
from crawlers.spiders.base import SourceSpider
from crawlers.spiders.message_board import OPEN_PREFIX


def seen_fingerprint(prepared: PreparedPost) -> str:
    """What the crawl state stores: message-board posts without reply are marked open."""
    post = prepared.post
    if post.channel == "message_board" and post.reply is None:
        return OPEN_PREFIX + prepared.fingerprint
    return prepared.fingerprint


class DedupPipeline(CrawlComponent):
    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.ids: set[str] = set()
        self.contents: set[str] = set()

    def process_item(self, item: Any) -> Any:
        if isinstance(item, SeenMark):
            return item
        spider = self.spider
        assert isinstance(item, PreparedPost)
        post, state = item.post, spider.ctx.state
        # Within the crawl. Content is compared only for posts known by URL: forum and
        # timeline posts have their own ids, and two "顶" replies are two posts.
        by_content = post.native_id is None
        if post.id in self.ids or (by_content and item.fingerprint in self.contents):
            self._drop(spider, post.id)
        if state is not None:
            stored = state.seen([post.id])
            if post.id in stored:
                changed = stored[post.id] != seen_fingerprint(item)
                if not (post.channel == "message_board" and changed):
                    self._drop(spider, post.id)
            elif by_content and state.seen_fingerprint([item.fingerprint]):
                self._drop(spider, post.id)
        self.ids.add(post.id)
        if by_content:
            self.contents.add(item.fingerprint)
        return item

    @staticmethod
    def _drop(spider: SourceSpider, key: str) -> None:
        spider.report.duplicates += 1
        raise DropItem(f"duplicate {key}")
