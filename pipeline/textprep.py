"""Text preparation hook: cleaning and personal-data masking before anything is stored.

The district's de-identification rule says personal data (phone and ID numbers, bank
cards, e-mail addresses, licence plates) is masked before a post is stored or shown.
The masking itself belongs to `classifiers.text`; `pipeline` imports no other package, so
the function is found through the entry-point group `yuqing.text` (name `prepare`).
It must be idempotent: a post may pass through it at ingest, in `persist` and in the
classifier.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from importlib.metadata import entry_points

from pipeline.messages import Post

log = logging.getLogger(__name__)
GROUP = "yuqing.text"
EMPTY_TEXT = "[无正文]"


@lru_cache(maxsize=1)
def text_preparer() -> Callable[[str], str]:
    """The installed `prepare(text) -> text`; without one, text passes unchanged (and
    the gap is logged, since unmasked text must not reach production)."""
    for ep in entry_points(group=GROUP, name="prepare"):
        return ep.load()
    log.warning(
        "no text preparation installed (entry point %s:prepare): posts are stored "
        "without personal-data masking",
        GROUP,
    )
    return lambda text: text


def prepare_post(post: Post) -> Post:
    """The post with title, text and official reply cleaned and masked."""
    prepare = text_preparer()
    title = prepare(post.title) if post.title else post.title
    # Text that cleans away entirely (only a link, only emoji) is never kept raw.
    update: dict[str, object] = {"text": prepare(post.text) or title or EMPTY_TEXT, "title": title}
    if post.reply is not None:
        update["reply"] = post.reply.model_copy(update={"text": prepare(post.reply.text)})
    return post.model_copy(update=update)
