"""Item → `Post`: validated, cleaned and masked by `pipeline.textprep` (the same
preparation the classifier uses), canonical URL, author kept only masked and hashed."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from scrapy.exceptions import DropItem

from crawlers.context import CrawlComponent
from crawlers.items import PostItem, SeenMark
from pipeline.messages import MessageError, Post, canonical_url, post_id
from pipeline.textprep import prepare_post


@dataclass
class PreparedPost:
    """A post ready to publish, with what the crawl state remembers of it."""

    post: Post
    fingerprint: str


def fingerprint(post: Post) -> str:
    """Content identity: title, text and official reply (an edit or a new reply changes it)."""
    reply = post.reply.text if post.reply else ""
    digest = hashlib.sha256(f"{post.title or ''}\n{post.text}\n{reply}".encode()).hexdigest()
    return digest[:32]


class PreparePipeline(CrawlComponent):
    def process_item(self, item: Any) -> Any:
        spider = self.spider
        if isinstance(item, SeenMark):
            return item
        assert isinstance(item, PostItem)
        text = item.text or item.title
        if not text or not text.strip():
            spider.report.dropped += 1
            spider.report.error("missing_text", item.url or item.native_id or "")
            raise DropItem("no text")
        source = spider.source.id
        data: dict[str, Any] = {
            "source": source,
            "channel": spider.channel,
            "url": canonical_url(item.url) if item.url else None,
            "native_id": item.native_id,
            "title": item.title,
            "author": item.author,
            "text": text,
            "published_at": item.published_at,
            "metrics": {k: v for k, v in item.metrics.items() if v is not None} or None,
            "reply": item.reply,
            "floor": item.floor,
            "parent_id": (
                post_id(source, native_id=item.parent_native_id) if item.parent_native_id else None
            ),
            "snapshot": base64.b64encode(item.snapshot).decode() if item.snapshot else None,
        }
        try:
            post = Post.from_dict(data)
        except MessageError as exc:
            spider.report.dropped += 1
            spider.report.error("invalid", f"{item.url or item.native_id}: {exc.reason}")
            raise DropItem(exc.reason) from None
        post = prepare_post(post.pseudonymise(spider.ctx.salt))
        return PreparedPost(post, fingerprint(post))
