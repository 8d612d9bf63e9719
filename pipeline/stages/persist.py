"""`persist`: stores every raw post once, whatever the bus delivers twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.messages import TOPIC_POSTS_RAW, Post
from pipeline.runner import ConsumerStage, Item, Outgoing
from pipeline.storage.repository import upsert_posts


def post_row(post: Post) -> dict[str, Any]:
    """The `posts` row of a message (snapshot decoded back to compressed bytes)."""
    import base64

    return {
        "id": post.id,
        "source": post.source,
        "channel": post.channel,
        "url": post.url,
        "title": post.title,
        "author_hash": post.author_hash,
        "author_masked": post.author,
        "text": post.text,
        "truncated": post.truncated,
        "published_at": post.published_at,
        "fetched_at": post.fetched_at,
        "metrics": post.metrics.model_dump(exclude_none=True) if post.metrics else None,
        "reply": post.reply.model_dump(mode="json", exclude_none=True) if post.reply else None,
        "snapshot": base64.b64decode(post.snapshot) if post.snapshot else None,
    }


class PersistStage(ConsumerStage[Post]):
    """Consumes `posts.raw`, upserts into `posts` (insert-or-ignore by post id)."""

    name = "persist"
    topics = (TOPIC_POSTS_RAW,)
    message_type = Post

    def handle(self, items: Sequence[Item[Post]]) -> list[Outgoing]:
        salt = self.ctx.settings.secret()
        rows = {}
        for item in items:
            post = item.message.pseudonymise(salt)
            rows.setdefault(post.id, post_row(post))
        with self.ctx.sessions.begin() as session:
            upsert_posts(session, list(rows.values()))
        return []
