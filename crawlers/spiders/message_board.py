"""`message_board`: government message boards (网民留言/问政). A message is published
when first seen and again once its official reply (回复) appears, which is what response
tracking needs; a message still unanswered is re-read on each crawl while it is listed."""

from __future__ import annotations

from typing import Any

from scrapy.http import Response

from crawlers.config import MessageBoardSource
from crawlers.extract import first_text, joined_text
from crawlers.items import PostItem
from crawlers.spiders.html import HtmlSpider

#: Fingerprint prefix of a message published without an official reply yet.
OPEN_PREFIX = "open:"


class MessageBoardSpider(HtmlSpider):
    kind = "message_board"
    channel = "message_board"
    source: MessageBoardSource

    def fresh(self, ids: list[str]) -> set[str]:
        """Never published, or published while still waiting for the reply."""
        if self.ctx.state is None:
            return set(ids)
        seen = self.ctx.state.seen(ids)
        return {i for i in ids if i not in seen or (seen[i] or "").startswith(OPEN_PREFIX)}

    def detail_item(self, response: Response, listed: dict[str, Any]) -> PostItem:
        item = super().detail_item(response, listed)
        d = self.source.detail
        reply = joined_text(response, d.reply)
        if reply:
            reply_time = first_text(response, d.reply_time)
            item.reply = {
                "text": reply,
                "time": self.date(reply_time, response.url) if reply_time else None,
                "by": first_text(response, d.reply_by),
            }
        return item
