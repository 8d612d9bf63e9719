"""Posts for the sample site, built from real public text: the sentences of the
department corpus (`classifiers/data/departments/labels.jsonl`, real news items).

Deterministic: post *n* of a channel is always the same, so a crawler sees stable
pages; new posts appear over time (one per channel every `new_every` seconds), so the
pipeline has something to watch.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib.resources import files

#: Posts each channel has when the site starts.
INITIAL_POSTS = 30
AUTHORS = ["王先生", "李女士", "张大爷", "赵老师", "刘师傅", "陈同学", "杨阿姨", "周女士"]
DEPARTMENTS = ["区城管委", "区住房城乡建设委", "区交通委", "区环保局", "区教委", "区卫生计生委"]


@lru_cache(maxsize=1)
def sentences() -> tuple[str, ...]:
    """Labelled (reviewed) sentences of 20–150 characters, in corpus order."""
    path = files("classifiers") / "data" / "departments" / "labels.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        text = (row.get("text") or "").strip()
        if row.get("label") and 20 <= len(text) <= 150:
            out.append(text)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class SamplePost:
    n: int
    title: str
    paragraphs: tuple[str, ...]
    author: str
    published: datetime
    replies: tuple[tuple[str, str, datetime], ...] = ()
    #: A message board's official reply (department, text, time), once it is given.
    official: tuple[str, str, datetime] | None = None

    @property
    def body(self) -> str:
        return "\n".join(self.paragraphs)


def _title(sentence: str) -> str:
    head = sentence.split("，")[0].split("。")[0]
    return head if len(head) <= 28 else head[:26] + "…"


@dataclass
class Channel:
    """One stream of posts (news, portal, forum, timeline, board)."""

    name: str
    seed: int
    started: float = field(default_factory=time.time)
    new_every: float = 60.0
    initial: int = INITIAL_POSTS

    def count(self, now: float | None = None) -> int:
        elapsed = max(0.0, (now or time.time()) - self.started)
        return self.initial + int(elapsed / self.new_every)

    def post(self, n: int) -> SamplePost:
        pool = sentences()
        rng = random.Random(self.seed * 1_000_003 + n)
        paras = tuple(pool[rng.randrange(len(pool))] for _ in range(rng.randint(2, 5)))
        at = datetime.fromtimestamp(self.started, UTC) + timedelta(
            seconds=(n - self.initial) * self.new_every
        )
        replies = tuple(
            (AUTHORS[rng.randrange(len(AUTHORS))], pool[rng.randrange(len(pool))],
             at + timedelta(minutes=5 * (k + 1)))
            for k in range(rng.randint(0, 4))
        )  # fmt: skip
        official = None
        # Half the messages get an official reply, three posting intervals after they came.
        if n % 2 == 0 and at + timedelta(seconds=3 * self.new_every) <= datetime.now(UTC):
            official = (
                DEPARTMENTS[n % len(DEPARTMENTS)],
                "您好，您反映的问题已转相关科室核实处理。" + pool[rng.randrange(len(pool))],
                at + timedelta(seconds=3 * self.new_every),
            )
        return SamplePost(
            n=n,
            title=_title(paras[0]),
            paragraphs=paras,
            author=AUTHORS[rng.randrange(len(AUTHORS))],
            published=at,
            replies=replies,
            official=official,
        )

    def newest(self, limit: int, offset: int = 0) -> list[SamplePost]:
        """Newest first, as list pages and timelines show them."""
        top = self.count() - 1 - offset
        return [self.post(n) for n in range(top, max(-1, top - limit), -1)]
