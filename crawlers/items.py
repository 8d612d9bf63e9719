"""What spiders yield: `PostItem` (becomes a `Post` on `posts.raw`) and `SeenMark`
(crawl state written once everything yielded before it was acknowledged by the bus)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class PostItem:
    """A post as read from the page, before cleaning and masking."""

    text: str | None
    url: str | None = None
    native_id: str | None = None
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    metrics: dict[str, int | None] = field(default_factory=dict)
    reply: dict[str, Any] | None = None
    floor: int | None = None
    parent_native_id: str | None = None
    #: The original (page, feed entry, JSON object) kept as evidence.
    snapshot: bytes | None = None


@dataclass
class SeenMark:
    """Remember `key` (a forum thread with its reply count, …) once what came before it
    is on the bus, so a crash in between makes the next crawl fetch it again."""

    key: str
    fingerprint: str | None = None
