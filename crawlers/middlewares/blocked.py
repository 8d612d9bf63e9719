"""Blocked-source detection: HTTP 403/418/432, a redirect to a captcha or login page, or
a small page that is a block notice. The crawl stops at once (hammering a site that
blocks us makes it worse), the source is marked blocked and backs off (`state`)."""

from __future__ import annotations

import re

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.utils.defer import deferred_from_coro

from crawlers.context import CrawlComponent

BLOCKED_STATUSES = frozenset({403, 418, 432})
# Where sites send a crawler they distrust. Matched against the URL path and query.
BLOCK_URL = re.compile(
    r"(?i)(?:/|^)(?:captcha|verify|verification|login|logon|signin|sign_in|passport|"
    r"security[-_]?check|antispider|anti_spider|waf)(?:[/._?-]|$)|action=login|"
    r"mod=logging"
)
# Block notices (checked on small pages only: a notice is short, an article is not).
BLOCK_TEXT = re.compile(
    r"请输入验证码|滑动验证|人机验证|安全验证|访问过于频繁|访问被拒绝|您的访问被阻断|"
    r"请登录后再访问|请先登录|Access Denied|Too Many Requests"
)
SMALL_PAGE = 8 * 1024


class SourceBlocked(IgnoreRequest):
    """The source refused us; the crawl of it ends here."""


class BlockedSourceMiddleware(CrawlComponent):
    def _reason(self, request: Request, response: Response) -> str | None:
        if response.status in BLOCKED_STATUSES:
            return f"http_{response.status}"
        extra = [re.compile(p) for p in self.spider.source.block_patterns]
        urls = [*request.meta.get("redirect_urls", []), response.url]
        # The page asked for is allowed to look like anything; where we were sent is not.
        for url in urls[1:] if len(urls) > 1 else []:
            if BLOCK_URL.search(url) or any(p.search(url) for p in extra):
                return "redirect_to_login_or_captcha"
        if isinstance(response, TextResponse) and len(response.body) <= SMALL_PAGE:
            text = response.text
            if BLOCK_TEXT.search(text) or any(p.search(text) for p in extra):
                return "block_page"
        return None

    async def process_response(self, request: Request, response: Response) -> Response:
        reason = self._reason(request, response)
        if reason is None:
            return response
        spider = self.crawler.spider
        spider.ctx.report.block(reason, response.url)
        if self.crawler.engine is not None and not spider.ctx.closing:
            spider.ctx.closing = True
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="blocked"))
        raise SourceBlocked(reason)
