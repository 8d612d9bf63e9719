"""`feed`: RSS 2.0, RSS 1.0 (RDF) and Atom, read with one namespace-free XPath set;
broken XML is parsed in recovery mode. With `detail` selectors each entry's page is
fetched for the full text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from parsel import Selector
from scrapy import Request
from scrapy.http import Response

from crawlers.config import FeedSource
from crawlers.extract import html_to_text, tidy
from crawlers.items import PostItem
from crawlers.spiders.base import snapshot
from crawlers.spiders.html import DetailMixin

_LINK = "link[@rel='alternate']/@href | link[not(@rel)]/@href | link/text() | @about"
_BODY = ("encoded", "content", "description", "summary")
_DATE = ("pubDate", "date", "published", "updated", "issued", "modified")
_AUTHOR = "creator/text() | author/name/text() | author/text()"


def _first(entry: Selector, xpath: str) -> str | None:
    for value in entry.xpath(xpath).getall():
        if value and value.strip():
            return value.strip()
    return None


class FeedSpider(DetailMixin):
    kind = "feed"
    channel = "feed"
    source: FeedSource

    def first_requests(self) -> Iterable[Request]:
        for url in self.source.urls:
            yield self.request(url, self.parse_feed, conditional=True)

    def parse_feed(self, response: Response) -> Iterator[Any]:
        if not self.fetched(response):
            return
        root = Selector(text=response.text, type="xml")
        root.remove_namespaces()
        entries = root.xpath("//item | //entry")
        if not entries:
            self.report.error("empty_feed", response.url)
        self.report.entries += len(entries)
        parsed = [self.entry(response, e) for e in entries]
        items = [i for i in parsed if i is not None]
        keys = [self.item_key(i) for i in items]
        fresh = self.unseen(keys)
        self.report.duplicates += len(items) - len(fresh)
        for key, item in zip(keys, items, strict=True):
            if key not in fresh:
                continue
            if self.source.detail and item.url:
                listed = {"title": item.title, "summary": item.text, "author": item.author}
                yield self.request(
                    item.url,
                    self.parse_detail,
                    meta={"listed": listed, "published_at": item.published_at},
                )
            else:
                yield item

    def parse_detail(self, response: Response) -> Iterator[PostItem]:
        for item in super().parse_detail(response):
            item.published_at = item.published_at or response.meta.get("published_at")
            yield item

    def item_key(self, item: PostItem) -> str:
        if item.url:
            return self.url_post_id(item.url)
        return self.native_post_id(item.native_id or "")

    def entry(self, response: Response, entry: Selector) -> PostItem | None:
        link = _first(entry, _LINK)
        url = response.urljoin(link) if link else None
        guid = _first(entry, "guid/text() | id/text()")
        if not url and not guid:
            self.report.error("missing_field", f"link and guid in {response.url}")
            return None
        body = next((b for b in (_first(entry, f"{n}/text()") for n in _BODY) if b), None)
        title = _first(entry, "title/text()")
        date_text = next((d for d in (_first(entry, f"{n}/text()") for n in _DATE) if d), None)
        return PostItem(
            text=html_to_text(body) if body else None,
            url=url if url and url.startswith(("http://", "https://")) else None,
            native_id=None if url else guid,
            title=tidy(html_to_text(title)) if title else None,
            author=_first(entry, _AUTHOR),
            published_at=self.date(date_text, url or guid or response.url),
            snapshot=snapshot(entry.get()),
        )
