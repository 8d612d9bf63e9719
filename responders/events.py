"""Events: the posts about one matter, across sources and reposts, kept as one.

**Clustering.** A post's text is normalised (links dropped, a repost chain reduced to
the reposted text, then letters, digits and CJK characters only, lower case) and reduced
to a 64-bit SimHash over its character shingles (`clustering.shingle` characters, 3 by
default). Near-identical texts — the same wire story on three portals, a re-crawled
page with a changed footer — differ in a few bits. The hash is cut into three blocks
(22, 22 and 20 bits, each a pair of the six bands the locks use): two hashes at Hamming
distance ≤ 5 differ in at most one bit of some block (pigeonhole), so candidates are
found by indexed lookups of each block's value and its one-bit neighbours on
`event_fingerprints`, never by a scan. A post joins the nearest candidate event within
`max_distance` bits that has the same topic (`same_topic`) and whose posts lie within
`window_hours` of it; otherwise it starts a new event. An event remembers up to
`max_fingerprints` distinct texts, so a story that drifts through rewordings stays one.

**Heat** (`responders/rules.py`, weights in `alert_rules.yaml`):
`10·log2(1 + posts) + 10·log2(distinct sources) + 10·log2(1 + posts in the hour up to the
event's latest post)`: 20 for one post, about 176 for 200 reposts from 5 sources in an hour.

**Spikes.** Posts are counted per topic and hour (`topic_hours`). When the hour of a new
post holds at least `spike.min_posts` posts of its topic and more than the mean + k·σ
of the `history_hours` before it (empty hours count as 0), the topic spikes, and the
events that got posts in that hour are marked (`spike_at`); the rules raise their
severity.

**Restart-safe and idempotent.** Everything lives in the database and is written in
the caller's transaction: a post already in `event_posts` is not counted again, so a
replayed batch changes nothing (its events are reported as `replayed`). Event ids derive
from the first post's id. On PostgreSQL, workers that cluster at the same time take
transaction-scoped advisory locks on the bands they look up (in one sorted order), so two
workers cannot open two events for the same text, and lock the candidate events' rows
(in id order), so two posts that reach one event through different bands add to its
counts one after the other.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from statistics import fmean, pstdev

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipeline.storage import models
from pipeline.storage.repository import one_of, one_of_listed, upsert_insert, write_rows
from responders import _native
from responders.rules import AlertRulesFile, higher

#: Bits per band: six bands, so two hashes within Hamming distance 5 share one.
BAND_WIDTHS = (11, 11, 11, 11, 10, 10)
BANDS = len(BAND_WIDTHS)
MAX_DISTANCE = BANDS - 1
#: Candidates are looked up by pairs of bands, three blocks of 22, 22 and 20 bits, each
#: an indexed column of `event_fingerprints`: two hashes within distance 5 differ in at
#: most one bit of some block (pigeonhole), so a block's value and its one-bit
#: neighbours find every one (`_probes`). A batch of 500 posts probes ~0.5 % of each
#: block's values (with the single bands it covered a fifth to a half of each), and the
#: lookup costs the same whatever the table holds.
BLOCK_BANDS = ((0, 1), (2, 3), (4, 5))
#: (shift, width) of each band in the hash.
_BANDS = tuple((sum(BAND_WIDTHS[:i]), width) for i, width in enumerate(BAND_WIDTHS))
#: (shift, width) of each block in the hash.
_BLOCKS = tuple(
    (sum(BAND_WIDTHS[:low]), BAND_WIDTHS[low] + BAND_WIDTHS[high]) for low, high in BLOCK_BANDS
)
HOUR = timedelta(hours=1)

#: Repost and reply markers: `//@name:`, `回复@name:`, `转发微博`.
_REPOST = re.compile(r"(?://|回复)@[^\s:：/]{1,30}[:：]|转发微博")
_URL = re.compile(r"(?:https?://|www\.)[^\s\u3000-\u303f\uff00-\uffef]+")
#: The event columns a batch changes (title, topic and state stay as they are).
_EVENT_CHANGES = (
    "first_seen",
    "last_seen",
    "post_count",
    "source_count",
    "heat",
    "sources",
    "severity",
    "watchlists",
    "spike_at",
)


def normalise(text: str) -> str:
    """The text as clustering sees it: links dropped; of a repost chain (`comment //@b:
    comment //@a: original`) the longest part, which is the reposted text; then letters,
    digits and CJK characters only, lower case."""
    if "://" in text or "www." in text:
        text = _URL.sub(" ", text)
    if "@" in text or "转发" in text:
        parts = [_native.alnum(part) for part in _REPOST.split(text)]
        return max(parts, key=len).lower()
    return _native.alnum(text).lower()


def simhashes(texts: Sequence[str], shingle: int = 3) -> list[int]:
    """64-bit SimHash of each text's normalised character shingles (every occurrence
    votes; `responders._native.simhashes`)."""
    if not texts:
        return []
    norms = [(normalise(t) or t.strip() or "-").ljust(shingle, "\0") for t in texts]
    return np.frombuffer(_native.simhashes(norms, shingle), dtype=np.uint64).tolist()


def simhash(text: str, shingle: int = 3) -> int:
    return simhashes([text], shingle)[0]


@lru_cache(maxsize=1 << 14)
def bands(fingerprint: int) -> tuple[int, ...]:
    return tuple((fingerprint >> shift) & ((1 << width) - 1) for shift, width in _BANDS)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def event_id_for(post_id: str) -> str:
    """An event's id, from its first post's id: the same on every replay."""
    return "ev-" + hashlib.sha256(post_id.encode()).hexdigest()[:24]


def hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class PostRef:
    """A post as clustering and the rules see it."""

    post_id: str
    source: str
    text: str
    at: datetime
    topic: str | None = None
    title: str | None = None
    #: Classifier severity if the post passes the rules' relevance gate, else None.
    severity: str | None = None
    watchlists: tuple[str, ...] = ()
    fingerprint: int = 0


@dataclass(slots=True)
class EventRow:
    """An event's row as a batch works on it: a plain object rather than an ORM one, so
    filing thousands of posts costs no ORM bookkeeping; `_write_events` stores it."""

    id: str
    title: str
    topic: str | None
    first_seen: datetime
    last_seen: datetime
    post_count: int = 0
    source_count: int = 0
    heat: float = 0.0
    state: str = "open"
    fingerprint: str | None = None
    sources: list[str] | None = None
    severity: str | None = None
    watchlists: list[str] | None = None
    spike_at: datetime | None = None


_EVENT_COLUMNS = tuple(f.name for f in fields(EventRow))


@dataclass
class Touched:
    """An event that got new posts in this batch."""

    event: EventRow
    created: bool
    new_posts: list[PostRef] = field(default_factory=list)
    spike: bool = False


@dataclass
class ClusterResult:
    touched: dict[str, Touched]
    #: Events of posts that were already in one (a replay): nothing of theirs changed.
    replayed: set[str]
    #: The event of every post of the batch.
    event_of: dict[str, str] = field(default_factory=dict)


@dataclass
class _Candidate:
    fingerprint: int
    event: EventRow


class EventStore:
    """Clusters posts into events in the database, under one rules config."""

    def __init__(self, rules: AlertRulesFile) -> None:
        self.rules = rules
        self.clustering = rules.clustering
        self.window = timedelta(hours=self.clustering.window_hours)

    def add(self, session: Session, posts: Sequence[PostRef]) -> ClusterResult:
        """File `posts` into events (new or existing), update their counts, heat and
        spikes; returns what changed. Uses the caller's transaction."""
        unique = list({p.post_id: p for p in posts}.values())
        if not unique:
            return ClusterResult({}, set(), {})
        for post, fingerprint in zip(
            unique, simhashes([p.text for p in unique], self.clustering.shingle), strict=True
        ):
            post.fingerprint = fingerprint
        # Locked before asking which posts are filed already: a post that two workers
        # hold at once (a batch redelivered during a rebalance) is then filed by the
        # first, and the second, waiting on the same bands, finds it filed.
        self._lock(session, unique)
        known = dict(
            session.execute(
                sa.select(models.EventPost.post_id, models.EventPost.event_id).where(
                    one_of(session, models.EventPost.post_id, [p.post_id for p in unique])
                )
            ).all()
        )
        fresh = sorted((p for p in unique if p.post_id not in known), key=lambda p: p.at)
        result = ClusterResult({}, set(known.values()), dict(known))
        if not fresh:
            return result
        new_fingerprints = self._assign(session, fresh, result.touched)
        result.event_of.update(
            (p.post_id, event_id) for event_id, t in result.touched.items() for p in t.new_posts
        )
        # Counts, heat and spikes are worked out in memory first, so each event row is
        # written once per batch (one statement for all of them), never flushed per post.
        self._update_counts(session, result.touched)
        self._spikes(session, fresh, result.touched)
        self._write_events(session, result.touched)
        write_rows(
            session,
            models.EventPost,
            [
                {"event_id": eid, "post_id": p.post_id, "at": p.at}
                for eid, t in result.touched.items()
                for p in t.new_posts
            ],
        )
        self._store_fingerprints(session, new_fingerprints)
        return result

    # -- clustering -------------------------------------------------------------------

    def topic_key(self, topic: str | None) -> str:
        """Posts whose keys differ never share an event: their topic, or one key for
        all when events may span topics (`clustering.same_topic: false`)."""
        return (topic or "") if self.clustering.same_topic else ""

    def _lock(self, session: Session, posts: Sequence[PostRef]) -> None:
        """PostgreSQL: advisory locks on every (topic, band) looked up, sorted, held to
        the end of the transaction. SQLite has one writer at a time anyway."""
        if session.get_bind().dialect.name != "postgresql":
            return
        keys = lock_keys(
            [p.fingerprint for p in posts],
            [_topic_lock_base(self.topic_key(p.topic)) for p in posts],
        )
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
            {"keys": "{" + ",".join(map(str, keys)) + "}"},
        )

    def _candidates(self, session: Session, posts: Sequence[PostRef]) -> list[_Candidate]:
        """Stored fingerprints within `max_distance` of a post, with their recent events."""
        fp = models.EventFingerprint
        probes = _probes([p.fingerprint for p in posts])
        statement = sa.select(fp.fingerprint, fp.event_id).where(
            sa.or_(
                *(
                    one_of_listed(session, getattr(fp, f"block{i}"), listed)
                    for i, listed in enumerate(probes)
                )
            )
        )
        # PostgreSQL plans it with the arrays at hand (`one_of` writes them into the
        # statement): a hashed scan or index lookups, whichever the table's size makes
        # cheaper. A generic plan, made without them, scanned the table testing each
        # row against the arrays element by element (~45 ms a batch at 10,000 rows).
        rows = session.execute(statement).all()
        # Some rows share a block value with a probe and are farther away: skipped
        # before their events are loaded.
        rows = [(int(h, 16), event_id) for h, event_id in rows]
        near = _within(
            np.fromiter((f for f, _ in rows), dtype=np.uint64, count=len(rows)),
            np.fromiter((p.fingerprint for p in posts), dtype=np.uint64, count=len(posts)),
            self.clustering.max_distance,
        )
        rows = [row for row, keep in zip(rows, near.tolist(), strict=True) if keep]
        if not rows:
            return []
        table = models.Event.__table__
        # Locked (PostgreSQL, in id order): two workers whose posts reach one event
        # through different bands hold different advisory locks, so without this both
        # would write its counts from what they read before the other's commit. The
        # second waits here and reads the first's committed row.
        events = {
            row.id: EventRow(**row._mapping)
            for row in session.execute(
                sa.select(*(table.c[name] for name in _EVENT_COLUMNS))
                .where(
                    one_of(session, table.c.id, {event_id for _, event_id in rows}),
                    table.c.last_seen >= posts[0].at - self.window,
                )
                .order_by(table.c.id)
                .with_for_update(key_share=True)  # FOR NO KEY UPDATE, as its upsert takes
            )
        }
        return [_Candidate(fp, events[event_id]) for fp, event_id in rows if event_id in events]

    def _assign(
        self, session: Session, posts: Sequence[PostRef], touched: dict[str, Touched]
    ) -> list[tuple[str, int]]:
        """Each post to its nearest event or a new one; returns new (event, fingerprint)s."""
        index: dict[tuple[int, int], list[_Candidate]] = defaultdict(list)

        def remember(candidate: _Candidate) -> None:
            for i, band in enumerate(bands(candidate.fingerprint)):
                index[(i, band)].append(candidate)

        for candidate in self._candidates(session, posts):
            remember(candidate)
        new: list[tuple[str, int]] = []
        for post in posts:
            match = self._nearest(post, index)
            if match is None:
                event = self._new_event(post)
                touched[event.id] = Touched(event, created=True)
                distance = 1  # its first fingerprint is new
            else:
                event, distance = match
                touched.setdefault(event.id, Touched(event, created=False))
            touched[event.id].new_posts.append(post)
            if distance > 0:
                new.append((event.id, post.fingerprint))
                remember(_Candidate(post.fingerprint, event))
        return new

    def _nearest(
        self, post: PostRef, index: dict[tuple[int, int], list[_Candidate]]
    ) -> tuple[EventRow, int] | None:
        topic = self.topic_key(post.topic)
        best: tuple[int, datetime, EventRow] | None = None
        for i, band in enumerate(bands(post.fingerprint)):
            for candidate in index.get((i, band), ()):
                event = candidate.event
                distance = hamming(post.fingerprint, candidate.fingerprint)
                if (
                    distance > self.clustering.max_distance
                    or self.topic_key(event.topic) != topic
                    or event.last_seen < post.at - self.window
                    or event.first_seen > post.at + self.window
                ):
                    continue
                # Nearest first; among equals the most recently active event.
                key = (distance, -event.last_seen.timestamp())
                if best is None or key < (best[0], -best[1].timestamp()):
                    best = (distance, event.last_seen, event)
        return (best[2], best[0]) if best else None

    def _new_event(self, post: PostRef) -> EventRow:
        title = (post.title or post.text).strip().replace("\n", " ")
        return EventRow(
            id=event_id_for(post.post_id),
            title=title[:200],
            topic=post.topic,
            first_seen=post.at,
            last_seen=post.at,
            fingerprint=f"{post.fingerprint:016x}",
            sources=[],
            watchlists=[],
        )

    def _store_fingerprints(self, session: Session, new: list[tuple[str, int]]) -> None:
        """Remember new distinct texts, up to `max_fingerprints` per event."""
        if not new:
            return
        fp = models.EventFingerprint
        stored = dict(
            session.execute(
                sa.select(fp.event_id, sa.func.count())
                .where(one_of(session, fp.event_id, {e for e, _ in new}))
                .group_by(fp.event_id)
            ).all()
        )
        rows = []
        for event_id, fingerprint in new:
            if stored.get(event_id, 0) >= self.clustering.max_fingerprints:
                continue
            stored[event_id] = stored.get(event_id, 0) + 1
            row = {"event_id": event_id, "fingerprint": f"{fingerprint:016x}"}
            row.update({f"block{i}": block for i, block in enumerate(blocks(fingerprint))})
            rows.append(row)
        write_rows(session, fp, rows)

    # -- counts, heat, spikes ---------------------------------------------------------

    def _update_counts(self, session: Session, touched: dict[str, Touched]) -> None:
        for t in touched.values():
            event, posts = t.event, t.new_posts
            event.post_count = (event.post_count or 0) + len(posts)
            sources = set(event.sources or []) | {p.source for p in posts}
            event.sources = sorted(sources)
            event.source_count = len(sources)
            event.first_seen = min(event.first_seen, *(p.at for p in posts))
            event.last_seen = max(event.last_seen, *(p.at for p in posts))
            for post in posts:
                event.severity = higher(event.severity, post.severity)
            hits = set(event.watchlists or []) | {w for p in posts for w in p.watchlists}
            event.watchlists = sorted(hits)
        velocity = self._velocity(session, touched)
        for t in touched.values():
            event = t.event
            event.heat = self.rules.heat.score(
                event.post_count, event.source_count, velocity.get(event.id, 0)
            )

    def _velocity(self, session: Session, touched: dict[str, Touched]) -> dict[str, int]:
        """Posts of each event in the hour up to its latest post: this batch's, and the
        stored ones of events that existed before it (a new event has none)."""
        if not touched:
            return {}
        latest = {event_id: t.event.last_seen for event_id, t in touched.items()}
        times = [(event_id, p.at) for event_id, t in touched.items() for p in t.new_posts]
        stored = [event_id for event_id, t in touched.items() if not t.created]
        if stored:
            ep = models.EventPost
            times += session.execute(
                sa.select(ep.event_id, ep.at).where(
                    one_of(session, ep.event_id, stored),
                    ep.at >= min(latest[e] for e in stored) - HOUR,
                )
            ).all()
        counts: Counter[str] = Counter()
        for event_id, at in times:
            if at is not None and latest[event_id] - HOUR <= at <= latest[event_id]:
                counts[event_id] += 1
        return counts

    def _write_events(self, session: Session, touched: dict[str, Touched]) -> None:
        """New events inserted and changed ones updated, in one upsert for the batch."""
        write_rows(
            session,
            models.Event,
            [{name: getattr(t.event, name) for name in _EVENT_COLUMNS} for t in touched.values()],
            update=_EVENT_CHANGES,
        )
        # The upsert bypasses the session: an Event object a caller holds reloads.
        mapper = sa.inspect(models.Event)
        for event_id in touched:
            held = session.identity_map.get(mapper.identity_key_from_primary_key((event_id,)))
            if held is not None:
                session.expire(held)

    def _spikes(
        self, session: Session, posts: Sequence[PostRef], touched: dict[str, Touched]
    ) -> None:
        per_hour = Counter((p.topic or "", hour_of(p.at)) for p in posts)
        table = models.TopicHour.__table__
        insert = upsert_insert(session, table)  # type: ignore[arg-type]
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["topic", "hour"],
                set_={"posts": table.c.posts + insert.excluded.posts},
            ),
            [{"topic": t, "hour": h, "posts": n} for (t, h), n in sorted(per_hour.items())],
        )
        spiking = self._spiking(session, per_hour)
        if not spiking:
            return
        for t in touched.values():
            hits = [p.at for p in t.new_posts if (p.topic or "", hour_of(p.at)) in spiking]
            if hits:
                t.spike = True
                t.event.spike_at = max(hits)

    def _spiking(
        self, session: Session, hours: Iterable[tuple[str, datetime]]
    ) -> set[tuple[str, datetime]]:
        """The (topic, hour)s whose count beats the trailing mean + k·σ."""
        spike = self.rules.spike
        wanted = sorted(set(hours))
        topics = {t for t, _ in wanted}
        start = min(h for _, h in wanted) - HOUR * spike.history_hours
        th = models.TopicHour
        counts = {
            (t, h): n
            for t, h, n in session.execute(
                sa.select(th.topic, th.hour, th.posts).where(
                    one_of(session, th.topic, topics), th.hour >= start
                )
            )
        }
        out = set()
        for topic, hour in wanted:
            current = counts.get((topic, hour), 0)
            if current < spike.min_posts:
                continue
            history = [
                counts.get((topic, hour - HOUR * i), 0) for i in range(1, spike.history_hours + 1)
            ]
            if current > fmean(history) + spike.k * pstdev(history):
                out.add((topic, hour))
        return out


def blocks(fingerprint: int) -> tuple[int, ...]:
    """The blocks of `BLOCK_BANDS` (each its two bands' bits, in place)."""
    return tuple((fingerprint >> shift) & ((1 << width) - 1) for shift, width in _BLOCKS)


def _probes(fingerprints: Sequence[int]) -> list[str]:
    """Per block of `BLOCK_BANDS`, the block values of `fingerprints` and every value one
    bit away from one of them, sorted, each once, comma-separated for
    `repository.one_of_listed` (`_native.probes`: a batch of 500 posts has ~33,000)."""
    return _native.probes(list(fingerprints), list(_BLOCKS))


def _within(stored: np.ndarray, fresh: np.ndarray, limit: int) -> np.ndarray:
    """For each stored hash, whether some fresh hash is within Hamming distance `limit`;
    all pairs in numpy, in blocks that keep the pair matrix to a few megabytes."""
    near = np.zeros(len(stored), dtype=bool)
    if not len(fresh):
        return near
    step = max(1, (1 << 19) // len(fresh))
    for start in range(0, len(stored), step):
        block = stored[start : start + step, None] ^ fresh[None, :]
        near[start : start + step] = np.bitwise_count(block).min(axis=1) <= limit
    return near


def lock_keys(fingerprints: Sequence[int], bases: Sequence[int]) -> list[int]:
    """The advisory lock keys of posts (their fingerprints, and their topics'
    `_topic_lock_base`): one per (topic, band index, band value), each once, sorted, so
    that every worker takes its locks in one order. In numpy: a batch of 500 posts
    has ~3,000 (the keys of strings hashed one by one cost the responder ~7 % of its
    time)."""
    if not fingerprints:
        return []
    fps = np.fromiter(fingerprints, dtype=np.uint64, count=len(fingerprints))
    base = np.fromiter(bases, dtype=np.int64, count=len(bases))
    parts = []
    for i, (shift, width) in enumerate(_BANDS):
        band = ((fps >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
        parts.append(base | (i << _BAND_BITS) | band)
    return np.unique(np.concatenate(parts)).tolist()


#: Low bits of a lock key: the band's index (3 bits) and value (`max(BAND_WIDTHS)`).
_BAND_BITS = max(BAND_WIDTHS)
_LOCK_LOW_BITS = _BAND_BITS + 3


@lru_cache(maxsize=1 << 12)
def _topic_lock_base(topic: str) -> int:
    """A topic's part of its lock keys: a signed 64-bit hash of it with the low
    `_LOCK_LOW_BITS` clear. Two topics that share one only share locks (a worker may
    wait when it need not); keys of one topic never collide."""
    digest = hashlib.sha256(f"yuqing.events|{topic}".encode()).digest()[:8]
    return int.from_bytes(digest, "big", signed=True) & ~((1 << _LOCK_LOW_BITS) - 1)
