"""One spider per source kind."""

from __future__ import annotations

from crawlers.spiders.base import SourceSpider
from crawlers.spiders.discuz import DiscuzSpider
from crawlers.spiders.feed import FeedSpider
from crawlers.spiders.html import HtmlSpider
from crawlers.spiders.json_api import JsonApiSpider
from crawlers.spiders.message_board import MessageBoardSpider

SPIDERS: dict[str, type[SourceSpider]] = {
    cls.kind: cls
    for cls in (FeedSpider, HtmlSpider, DiscuzSpider, JsonApiSpider, MessageBoardSpider)
}

__all__ = ["SPIDERS", "SourceSpider"]
