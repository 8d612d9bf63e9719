"""`persist`: stores every raw post once, whatever the bus delivers twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.messages import TOPIC_POSTS_RAW, Post
from pipeline.runner import ConsumerStage, Item, Outgoing
from pipeline.storage.repository import upsert_posts
from pipeline.textprep import prepare_post


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


def post_from_row(row: Any) -> Post:
    """The message of a stored `posts` row (for re-publishing to a new model)."""
    import base64

    return Post(
        id=row.id,
        source=row.source,
        channel=row.channel,
        url=row.url,
        title=row.title,
        author=row.author_masked,
        author_hash=row.author_hash,
        text=row.text,
        truncated=row.truncated,
        published_at=row.published_at,
        fetched_at=row.fetched_at,
        metrics=row.metrics,
        reply=row.reply,
        snapshot=base64.b64encode(row.snapshot).decode() if row.snapshot else None,
    )


class PersistStage(ConsumerStage[Post]):
    """Consumes `posts.raw`, upserts into `posts` (insert-or-ignore by post id). Text is
    cleaned and masked again before it is stored (idempotent; whoever published it
    should have done it already)."""

    name = "persist"
    topics = (TOPIC_POSTS_RAW,)
    message_type = Post

    def handle(self, items: Sequence[Item[Post]]) -> list[Outgoing]:
        salt = self.ctx.settings.secret()
        rows = {}
        for item in items:
            post = prepare_post(item.message.pseudonymise(salt))
            rows.setdefault(post.id, post_row(post))
        with self.ctx.sessions.begin() as session:
            upsert_posts(session, list(rows.values()))
        return []
