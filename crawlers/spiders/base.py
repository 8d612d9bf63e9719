"""What every spider shares: requests with the source's politeness settings, error
accounting (every failure counted by reason and logged, none fatal), dates in the
source's time zone, and the seen-check that keeps re-crawls cheap."""

from __future__ import annotations

import os
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectError, ConnectionLost, DNSLookupError, TimeoutError
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from crawlers import settings as defaults
from crawlers.context import CrawlContext
from crawlers.dates import parse_date
from crawlers.middlewares.blocked import SourceBlocked
from crawlers.middlewares.conditional import CONDITIONAL_META
from pipeline.messages import post_id

_FAILURE_REASONS: list[tuple[tuple[type[BaseException], ...], str]] = [
    ((DownloadTimeoutError, TimeoutError), "timeout"),
    ((DownloadCancelledError, CancelledError), "too_large"),
    ((CannotResolveHostError, DNSLookupError), "dns"),
    ((DownloadConnectionRefusedError, ConnectError), "connection"),
    (
        (ResponseDataLossError, ConnectionLost, ResponseFailed, ResponseNeverReceived),
        "connection_lost",
    ),
    ((DownloadFailedError,), "download_failed"),
]


class SourceSpider(scrapy.Spider):
    """Base of the spiders; a subclass per source kind implements `start_requests_for`."""

    kind: ClassVar[str]
    channel: ClassVar[str]

    def __init__(self, ctx: CrawlContext, **kwargs: Any):
        super().__init__(name=ctx.source.id, **kwargs)
        self.ctx = ctx
        self.source = ctx.source
        self.report = ctx.report
        self.headers = ctx.source.request_headers()
        self.cookies = ctx.source.request_cookies()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SourceSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.on_dropped, signal=signals.request_dropped)
        return spider

    def on_dropped(self, request: scrapy.Request) -> None:
        """A redirect back to a page of this crawl is dropped by the duplicate filter:
        that is a redirect loop, and it is counted as one."""
        if request.meta.get("redirect_times"):
            self.report.error("redirect_loop", request.url)

    # --- requests ---------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        for request in self.first_requests():
            yield request

    def first_requests(self) -> Iterable[scrapy.Request]:
        raise NotImplementedError

    def request(
        self,
        url: str,
        callback: Callable[..., Any],
        *,
        conditional: bool = False,
        meta: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> scrapy.Request:
        """A request with the source's proxy, error accounting and, for pages that
        start a crawl, conditional headers (an unchanged page answers 304)."""
        meta = dict(meta or {})
        if self.source.proxy_env and os.environ.get(self.source.proxy_env):
            meta["proxy"] = os.environ[self.source.proxy_env]
        if conditional:
            meta[CONDITIONAL_META] = True
            meta["handle_httpstatus_list"] = [304]
        kwargs.setdefault("headers", self.headers)
        kwargs.setdefault("cookies", self.cookies)
        return scrapy.Request(url, callback=callback, errback=self.on_error, meta=meta, **kwargs)

    def fetched(self, response: Response) -> bool:
        """Count the page; False for a 304 (nothing changed since the last crawl) and
        for a page that is not text (an image or a PDF where a page was expected)."""
        if response.status == 304:
            self.report.not_modified += 1
            return False
        self.report.pages += 1
        if not hasattr(response, "text"):
            self.report.error("not_text", response.url)
            return False
        return True

    def on_error(self, failure: Failure) -> None:
        """Count and log a failed request by reason; the crawl goes on."""
        request = getattr(failure, "request", None)
        url = request.url if request is not None else ""
        if failure.check(SourceBlocked):
            return  # counted by the middleware as `blocked`
        if failure.check(HttpError):
            self.report.error(f"http_{failure.value.response.status}", url)
            return
        if failure.check(IgnoreRequest):
            message = str(failure.value)
            if "robots.txt" in message:
                self.report.error("robots", url)
            elif "redirect" in message:
                self.report.error("redirect_loop", url)
            else:
                self.report.error("ignored", f"{url}: {message}")
            return
        for types, reason in _FAILURE_REASONS:
            if failure.check(*types):
                self.report.error(reason, url)
                return
        self.report.error("download", f"{url}: {failure.getErrorMessage()}")

    # --- fields -----------------------------------------------------------------------

    def date(self, text: Any, where: str) -> datetime | None:
        """The date in `text` (source time zone), counting `bad_date` when it has none."""
        if text is None or text == "":
            return None
        found = parse_date(text, self.source.tz)
        if found is None:
            self.report.error("bad_date", f"{where}: {str(text)[:80]!r}")
        return found

    def unseen(self, keys: Iterable[str]) -> set[str]:
        """Keys not yet published (all of them in a dry run)."""
        keys = list(keys)
        if self.ctx.state is None:
            return set(keys)
        seen = self.ctx.state.seen(keys)
        return {k for k in keys if k not in seen}

    def url_post_id(self, url: str) -> str:
        return post_id(self.source.id, url=url)

    def native_post_id(self, native_id: str) -> str:
        return post_id(self.source.id, native_id=native_id)


def snapshot(data: bytes | str) -> bytes:
    """The original as evidence, capped (a huge page is kept in part, not refused)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return zlib.compress(raw[: defaults.SNAPSHOT_MAX_BYTES], 6)
