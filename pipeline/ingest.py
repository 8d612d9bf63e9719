"""`yuqing ingest`: validated posts from JSONL onto `posts.raw`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from pipeline.bus import Bus
from pipeline.jsonl import read_jsonl
from pipeline.messages import TOPIC_POSTS_RAW, MessageError, Post
from pipeline.settings import Settings
from pipeline.textprep import prepare_post


@dataclass
class IngestResult:
    published: int = 0
    failed: int = 0


def ingest_stream(
    stream: IO[bytes],
    bus: Bus,
    settings: Settings,
    report: Callable[[str], None],
    source: str | None = None,
) -> IngestResult:
    """Publish every valid line (keyed by post id, so a duplicate lands on the same
    partition); `report` each bad one as `line N: reason`. Flushes before returning."""
    result = IngestResult()
    salt = settings.secret()
    with bus.producer() as producer:
        for line in read_jsonl(stream):
            if line.error is not None:
                report(f"line {line.number}: {line.error}")
                result.failed += 1
                continue
            data = dict(line.data or {})
            data.setdefault("channel", "ingest")
            if source:
                data.setdefault("source", source)
            try:
                post = prepare_post(Post.from_dict(data).pseudonymise(salt))
            except MessageError as exc:
                report(f"line {line.number}: {exc.reason}")
                result.failed += 1
                continue
            producer.publish(TOPIC_POSTS_RAW, post.to_json(), post.id.encode())
            result.published += 1
        producer.flush()
    return result
