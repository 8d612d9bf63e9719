"""`discuz`: Discuz! X forums. forumdisplay pages list threads with their reply counts;
a thread is read when it is new or its reply count changed since the last crawl, from
the page where the new replies start. Every floor is a post: the first (楼主) carries
views and replies; replies point to it by `parent_id`. GBK, GB18030 and UTF-8 pages
alike (`middlewares.encoding`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urljoin

from scrapy import Request
from scrapy.http import Response

from crawlers.config import DiscuzSource
from crawlers.extract import first_text, joined_text, select, to_int
from crawlers.items import PostItem, SeenMark
from crawlers.spiders.base import SourceSpider, snapshot

_FLOOR_NAMES = {"楼主": 1, "沙发": 2, "板凳": 3, "地板": 4}
_DIGITS = re.compile(r"(\d+)")


def floor_number(text: str | None) -> int | None:
    if not text:
        return None
    for name, n in _FLOOR_NAMES.items():
        if name in text:
            return n
    return to_int(text)


def _id_in(value: str | None) -> str | None:
    m = _DIGITS.search(value or "")
    return m.group(1) if m else None


class DiscuzSpider(SourceSpider):
    kind = "discuz"
    channel = "discuz"
    source: DiscuzSource
    posts_per_page = 10  # Discuz's default; a later page is a guess refined by `nxt`

    def forum_url(self, fid: int, page: int) -> str:
        return urljoin(self.source.base_url, f"forum.php?mod=forumdisplay&fid={fid}&page={page}")

    def thread_url(self, tid: str, page: int) -> str:
        return urljoin(self.source.base_url, f"forum.php?mod=viewthread&tid={tid}&page={page}")

    def first_requests(self) -> Iterable[Request]:
        for fid in self.source.forums:
            yield self.request(self.forum_url(fid, 1), self.parse_forum, meta={"page": 1})

    def parse_forum(self, response: Response) -> Iterator[Any]:
        if not self.fetched(response):
            return
        s = self.source.selectors
        threads: dict[str, dict[str, Any]] = {}
        for node in select(response, s.thread):
            link = first_text(node, s.thread_link)
            tid = _id_in(node.attrib.get("id")) or _id_in(link)
            if not tid or not link:
                self.report.error("missing_field", f"thread link on {response.url}")
                continue
            threads[tid] = {
                "url": response.urljoin(link),
                "title": first_text(node, s.thread_title),
                "replies": to_int(first_text(node, s.thread_replies)),
                "views": to_int(first_text(node, s.thread_views)),
            }
        if not threads:
            self.report.error("empty_list", response.url)
        self.report.entries += len(threads)
        seen = self.ctx.state.seen(f"thread:{t}" for t in threads) if self.ctx.state else {}
        changed = 0
        for tid, thread in threads.items():
            before = seen.get(f"thread:{tid}")
            if f"thread:{tid}" in seen and before == str(thread["replies"]):
                self.report.duplicates += 1
                continue
            changed += 1
            if f"thread:{tid}" in seen and before and before.isdigit():
                page = int(before) // self.posts_per_page + 1  # where the new replies start
                url = self.thread_url(tid, page) if page > 1 else thread["url"]
            else:
                page, url = 1, thread["url"]
            meta = {"tid": tid, "thread": thread, "page": page, "read": 1}
            yield self.request(url, self.parse_thread, meta=meta)
        page = int(response.meta["page"])
        if page < self.source.max_pages and (changed or self.ctx.state is None):
            link = first_text(response, s.next_page)
            if link:
                yield self.request(
                    response.urljoin(link), self.parse_forum, meta={"page": page + 1}
                )

    def parse_thread(self, response: Response) -> Iterator[Any]:
        meta = response.meta
        tid, thread = meta["tid"], meta["thread"]
        if not self.fetched(response):
            return
        s = self.source.selectors
        title = first_text(response, s.page_title) or thread["title"]
        items = [
            self.floor(response, node, tid, title, thread) for node in select(response, s.post)
        ]
        items = [i for i in items if i is not None]
        if not items:
            self.report.error("empty_thread", response.url)
        fresh = self.unseen(self.native_post_id(i.native_id or "") for i in items)
        for item in items:
            if self.native_post_id(item.native_id or "") in fresh:
                yield item
            else:
                self.report.duplicates += 1
        link = first_text(response, s.next_page)
        if link and meta["read"] < self.source.thread_pages:
            yield self.request(
                response.urljoin(link),
                self.parse_thread,
                meta={
                    "tid": tid,
                    "thread": thread,
                    "page": meta["page"] + 1,
                    "read": meta["read"] + 1,
                },
            )
        else:  # the thread is read as far as we go: remember its reply count
            yield SeenMark(f"thread:{tid}", str(thread["replies"]))

    def floor(
        self, response: Response, node: Any, tid: str, title: str | None, thread: dict[str, Any]
    ) -> PostItem | None:
        s = self.source.selectors
        pid = _id_in(node.attrib.get("id"))
        if not pid:
            return None
        floor = floor_number(first_text(node, s.post_floor))
        # Recent posts show "3 小时前" with the exact time in the span's title.
        when = first_text(node, f"{s.post_time} span::attr(title)") or first_text(node, s.post_time)
        first = floor == 1
        return PostItem(
            text=joined_text(node, s.post_body),
            url=f"{response.url.split('#')[0]}#pid{pid}",
            native_id=tid if first else f"{tid}-{pid}",
            title=title,
            author=first_text(node, s.post_author),
            published_at=self.date(when, response.url) if when else None,
            metrics={"views": thread["views"], "replies": thread["replies"]} if first else {},
            floor=floor,
            parent_native_id=None if first else tid,
            snapshot=snapshot(node.get()),
        )
