"""Retries with exponential backoff: a struggling server gets time to recover instead
of the same request again at once."""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import reactor
from twisted.internet.task import deferLater

BACKOFF_META = "yuqing_backoff"


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry, with the n-th retry waiting `RETRY_BACKOFF_BASE * 2**(n-1)` s."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffRetryMiddleware:
        mw = super().from_crawler(crawler)
        mw.backoff_base = crawler.settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        mw.backoff_max = crawler.settings.getfloat("RETRY_BACKOFF_MAX", 60.0)
        return mw

    def _retry(self, request: Request, reason: Any) -> Request | None:
        retry = super()._retry(request, reason)
        if retry is not None:
            n = int(retry.meta.get("retry_times", 1))
            retry.meta[BACKOFF_META] = min(self.backoff_base * 2 ** (n - 1), self.backoff_max)
        return retry

    async def process_request(self, request: Request) -> None:
        delay = request.meta.pop(BACKOFF_META, 0)
        if delay:
            await maybe_deferred_to_future(deferLater(reactor, delay, lambda: None))
