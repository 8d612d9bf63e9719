"""`json_api`: social timelines and search APIs. Items are found by a path, fields mapped
by paths, pages followed by page number or by a cursor read from each response (Weibo's
mobile timeline: `data.cards[*].mblog`, `data.cardlistInfo.since_id`). Credentials come
from the environment (`headers_env`, `cookies_env`), never from the YAML."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from scrapy import Request
from scrapy.http import Response
from w3lib.url import add_or_replace_parameter

from crawlers.config import JsonApiSource
from crawlers.extract import html_to_text, json_path, json_template, json_value, to_int
from crawlers.items import PostItem
from crawlers.spiders.base import SourceSpider, snapshot


class JsonApiSpider(SourceSpider):
    kind = "json_api"
    channel = "json_api"
    source: JsonApiSource

    def page_url(self, page: int, cursor: Any) -> str:
        paging = self.source.paging
        if paging.type == "page":
            return add_or_replace_parameter(self.source.url, paging.param, str(page))
        if paging.type == "cursor" and cursor not in (None, ""):
            return add_or_replace_parameter(self.source.url, paging.param, str(cursor))
        return self.source.url

    def first_requests(self) -> Iterable[Request]:
        paging = self.source.paging
        cursor = None
        if paging.resume and self.ctx.state is not None:
            cursor = self.ctx.state.cursor.get("cursor")
        page = paging.start
        yield self.request(
            self.page_url(page, cursor), self.parse_page, meta={"page": page, "read": 1}
        )

    def parse_page(self, response: Response) -> Iterator[Any]:
        if not self.fetched(response):
            return
        try:
            data = json.loads(response.text)
        except (ValueError, AttributeError) as exc:
            self.report.error("bad_json", f"{response.url}: {exc}")
            return
        raw_items = json_path(data, self.source.items)
        if not raw_items:
            self.report.error("empty_list", response.url)
        self.report.entries += len(raw_items)
        items = [i for i in (self.item(raw) for raw in raw_items) if i is not None]
        keys = [
            self.native_post_id(i.native_id) if i.native_id else self.url_post_id(i.url or "")
            for i in items
        ]
        fresh = self.unseen(keys)
        self.report.duplicates += len(items) - len(fresh)
        for key, item in zip(keys, items, strict=True):
            if key in fresh:
                yield item
        yield from self.next_page(response, data, bool(fresh))

    def next_page(self, response: Response, data: Any, anything_new: bool) -> Iterator[Request]:
        paging, meta = self.source.paging, response.meta
        cursor = json_value(data, paging.cursor_path) if paging.type == "cursor" else None
        if paging.resume and cursor not in (None, ""):
            self.ctx.cursor = {"cursor": cursor}
        if paging.type == "none" or meta["read"] >= self.source.max_pages:
            return
        if not anything_new and self.ctx.state is not None and not paging.resume:
            return  # newest first: the rest was seen before
        if paging.type == "cursor" and cursor in (None, ""):
            return
        page = meta["page"] + 1
        yield self.request(
            self.page_url(page, cursor),
            self.parse_page,
            meta={"page": page, "read": meta["read"] + 1},
        )

    def item(self, raw: Any) -> PostItem | None:
        f = self.source.fields
        native = json_value(raw, f.native_id)
        url = json_template(raw, f.url) if f.url else None
        if native is None and not url:
            self.report.error("missing_field", "native_id and url")
            return None
        text = json_value(raw, f.text)
        if text is not None and not isinstance(text, str):
            text = str(text)
        if text and self.source.html_text:
            text = html_to_text(text)
        author = json_value(raw, f.author)
        when = json_value(raw, f.published_at)
        return PostItem(
            text=text,
            url=url if url and url.startswith(("http://", "https://")) else None,
            native_id=str(native) if native is not None else None,
            title=json_value(raw, f.title),
            author=str(author) if author is not None else None,
            published_at=self.date(when, str(native or url)),
            metrics={
                name: to_int(json_value(raw, getattr(f, name)))
                for name in ("views", "replies", "reposts", "likes")
            },
            snapshot=snapshot(json.dumps(raw, ensure_ascii=False)),
        )
