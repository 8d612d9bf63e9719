"""`html`: list pages → detail pages, read with the source's CSS/XPath selectors;
pagination by a next-page selector; `list_only` takes the entries from the list alone.

A re-crawl fetches only list pages: detail pages of entries already published are not
requested, and pagination stops at the first page with nothing new on it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from parsel import Selector
from scrapy import Request
from scrapy.http import Response

from crawlers.config import DetailFields, HtmlSource, ListFields
from crawlers.extract import first_text, joined_text, select, to_int
from crawlers.items import PostItem
from crawlers.spiders.base import SourceSpider, snapshot


class DetailMixin(SourceSpider):
    """Reads a detail page with `DetailFields` (shared by `html`, `feed` and boards)."""

    def detail_fields(self) -> DetailFields:
        return self.source.detail

    def parse_detail(self, response: Response) -> Iterator[PostItem]:
        if not self.fetched(response):
            return
        yield self.detail_item(response, response.meta.get("listed") or {})

    def detail_item(self, response: Response, listed: dict[str, Any]) -> PostItem:
        d = self.detail_fields()
        title = first_text(response, d.title) or listed.get("title")
        body = joined_text(response, d.body)
        if not body:
            self.report.error("missing_field", f"body: {response.url}")
            body = listed.get("summary")
        date_text = first_text(response, d.date) if d.date else None
        published = self.date(date_text, response.url) if date_text else None
        if published is None and listed.get("date"):
            published = self.date(listed["date"], response.url)
        if d.date and not date_text and not listed.get("date"):
            self.report.error("missing_field", f"date: {response.url}")
        return PostItem(
            text=body,
            url=response.url,
            title=title,
            author=first_text(response, d.author) or listed.get("author"),
            published_at=published,
            metrics={
                "views": to_int(first_text(response, d.views)),
                "replies": to_int(first_text(response, d.replies)),
            },
            snapshot=snapshot(response.body),
        )


class HtmlSpider(DetailMixin):
    kind = "html"
    channel = "html"
    source: HtmlSource

    def first_requests(self) -> Iterable[Request]:
        for url in self.source.start_urls:
            yield self.request(url, self.parse_list, conditional=True, meta={"page": 1})

    def fresh(self, ids: list[str]) -> set[str]:
        """Entries to fetch: those never published."""
        return self.unseen(ids)

    def list_entries(self, response: Response, fields: ListFields) -> list[tuple[str, Selector]]:
        """(absolute URL, entry node) per entry; relative and `//host/...` links resolved."""
        entries = []
        for node in select(response, fields.item):
            link = first_text(node, fields.link)
            if not link:
                self.report.error("missing_field", f"link on {response.url}")
                continue
            url = response.urljoin(link.strip())
            if not url.startswith(("http://", "https://")):
                continue  # javascript:, mailto:
            entries.append((url, node))
        if not entries:
            self.report.error("empty_list", response.url)
        self.report.entries += len(entries)
        return entries

    def parse_list(self, response: Response) -> Iterator[Any]:
        if not self.fetched(response):
            return
        fields = self.source.list
        entries = {
            self.url_post_id(url): (url, node) for url, node in self.list_entries(response, fields)
        }
        fresh = self.fresh(list(entries))
        self.report.duplicates += len(entries) - len(fresh)
        for pid, (url, node) in entries.items():
            if pid not in fresh:
                continue
            listed = {
                "title": first_text(node, fields.title),
                "date": first_text(node, fields.date),
                "summary": joined_text(node, fields.summary),
                "author": first_text(node, fields.author),
            }
            if self.list_only:
                yield self.list_item(url, node, listed)
            else:
                yield self.request(url, self.parse_detail, meta={"listed": listed})
        yield from self.next_page(response, bool(fresh))

    @property
    def list_only(self) -> bool:
        return bool(getattr(self.source, "list_only", False))

    def list_item(self, url: str, node: Selector, listed: dict[str, Any]) -> PostItem:
        return PostItem(
            text=listed["summary"] or listed["title"],
            url=url,
            title=listed["title"],
            author=listed["author"],
            published_at=self.date(listed["date"], url),
            snapshot=snapshot(node.get()),
        )

    def next_page(self, response: Response, anything_new: bool) -> Iterator[Request]:
        page = int(response.meta.get("page", 1))
        if not self.source.next_page or page >= self.source.max_pages:
            return
        if not anything_new and self.ctx.state is not None:
            return  # the rest is older still: seen already
        link = first_text(response, self.source.next_page)
        if link:
            yield self.request(
                response.urljoin(link.strip()), self.parse_list, meta={"page": page + 1}
            )
