"""Conditional requests: feeds and first list pages are asked with the ETag and
Last-Modified of the last crawl, so an unchanged source answers 304 and costs nothing.
New validators are kept only when the crawl ends well (`run`), so a crawl that failed
half-way fetches the page in full next time."""

from __future__ import annotations

from scrapy import Request
from scrapy.http import Response

from crawlers.context import CrawlComponent

CONDITIONAL_META = "yuqing_conditional"


class ConditionalRequestMiddleware(CrawlComponent):
    def process_request(self, request: Request) -> None:
        ctx = self.spider.ctx
        if not request.meta.get(CONDITIONAL_META) or ctx.state is None:
            return
        etag, modified = ctx.state.validators(request.url)
        if etag:
            request.headers.setdefault(b"If-None-Match", etag.encode("latin-1"))
        if modified:
            request.headers.setdefault(b"If-Modified-Since", modified.encode("latin-1"))

    def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get(CONDITIONAL_META) and response.status == 200:
            etag = response.headers.get(b"ETag")
            modified = response.headers.get(b"Last-Modified")
            if etag or modified:
                self.spider.ctx.validators[request.url] = (
                    etag.decode("latin-1") if etag else None,
                    modified.decode("latin-1") if modified else None,
                )
        return response
