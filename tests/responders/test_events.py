"""Event clustering: reposts across sources are one event; heat, spikes, replays."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipeline.storage import models
from responders.events import (
    BAND_WIDTHS,
    BLOCK_BANDS,
    MAX_DISTANCE,
    ClusterResult,
    EventStore,
    PostRef,
    _probes,
    _topic_lock_base,
    _within,
    bands,
    blocks,
    event_id_for,
    hamming,
    lock_keys,
    normalise,
    simhash,
    simhashes,
)
from responders.rules import AlertRulesFile
from tests.responders.conftest import ON_BOTH, T0, store_posts

STORY = (
    "近日，有市民反映本区某工地夜间施工扬尘严重，噪声扰民，"
    "周边居民多次投诉无果，希望有关部门尽快处理。"
)
OTHER = "本区教委发布2026年义务教育阶段入学政策，适龄儿童家长可于五月登录平台报名。"
SOURCES = ["district-weibo", "local-forum", "district-news-rss", "wechat", "toutiao"]


def ref(
    i: int,
    text: str = STORY,
    *,
    minutes: float = 0,
    source: str | None = None,
    topic: str = "环境保护",
    severity: str | None = "medium",
) -> PostRef:
    return PostRef(
        post_id=f"p{i}",
        source=source or SOURCES[i % len(SOURCES)],
        text=text,
        at=T0 + timedelta(minutes=minutes),
        topic=topic,
        severity=severity,
    )


def reposts(n: int, start: int = 0, minutes: float = 0.25) -> list[PostRef]:
    """`n` reposts of STORY: Weibo chains with comments, punctuation variants."""
    variants = [
        STORY,
        f"转发微博 //@网友{{i}}: 太过分了 //@本地通: {STORY}",
        STORY.replace("，", ",").replace("。", "!!"),
        f"#扬尘# {STORY} http://t.cn/abc",
    ]
    return [
        ref(i, variants[i % len(variants)].replace("{i}", str(i)), minutes=i * minutes)
        for i in range(start, start + n)
    ]


def add(session: Session, store: EventStore, refs: list[PostRef]):
    store_posts(session, refs)
    result = store.add(session, refs)
    session.commit()
    return result


@pytest.fixture
def store() -> EventStore:
    return EventStore(AlertRulesFile())


def test_simhash_sees_reposts_and_variants_as_one_text() -> None:
    base = simhash(STORY)
    assert simhash(f"转发微博 //@张三: 太过分了 //@李四: {STORY}") == base
    assert simhash(STORY.replace("，", ",")) == base
    assert hamming(base, simhash(STORY + "来源：新京报")) > 0
    assert hamming(base, simhash(OTHER)) > 16
    assert simhashes([STORY, "x", OTHER]) == [base, simhash("x"), simhash(OTHER)]
    assert normalise("回复@小王: 已处理好了 //@a:b") == "已处理好了"
    assert normalise("见 https://x.cn/a?b=1，已转") == "见已转"


def reference_simhash(text: str, shingle: int = 3) -> int:
    """The SimHash of one text in plain Python, as the module doc defines it: polynomial
    hash (×1,000,003, mod 2**64) of each window of code points, splitmix64's finaliser,
    then per bit a strict majority of the windows."""
    mask = (1 << 64) - 1
    norm = (normalise(text) or text.strip() or "-").ljust(shingle, "\0")
    votes, windows = [0] * 64, 0
    for start in range(len(norm) - shingle + 1):
        x = 0
        for char in norm[start : start + shingle]:
            x = (x * 1_000_003 + ord(char)) & mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        x ^= x >> 31
        windows += 1
        for bit in range(64):
            votes[bit] += x >> bit & 1
    return sum(1 << bit for bit in range(64) if votes[bit] * 2 > windows)


@pytest.mark.parametrize("shingle", [1, 3, 5])
def test_batch_simhash_equals_the_per_post_definition_bit_for_bit(shingle: int) -> None:
    texts = [
        STORY,
        OTHER,
        f"转发微博 //@张三: 太过分了 //@李四: {STORY}",
        "",
        " ",
        "a",
        "ab",
        "😀 emoji 𠮷 outside the BMP",
        "见 https://x.cn/a?b=1，已转",
        OTHER * 30,
    ]
    expected = [reference_simhash(text, shingle) for text in texts]
    assert simhashes(texts, shingle) == expected
    assert [simhash(text, shingle) for text in texts] == expected


def test_native_alnum_keeps_what_the_regex_kept() -> None:
    """`normalise`'s filter: letters and digits of every code point, as `[\\W_]+` removal
    left them."""
    import re

    from responders import _native

    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert _native.alnum(every) == re.sub(r"[\W_]+", "", every)
    assert _native.alnum("") == "" and _native.alnum("_ ，!") == ""
    assert _native.alnum("ＡＢ_c１２ ①𠮷") == "ＡＢc１２①𠮷"
    with pytest.raises(TypeError):
        _native.alnum(b"abc")


def test_native_simhash_refuses_what_it_cannot_hash() -> None:
    from responders import _native

    with pytest.raises(ValueError, match="text 1 is not a str of at least 3"):
        _native.simhashes(["abc", "ab"], 3)
    with pytest.raises(ValueError, match="text 0"):
        _native.simhashes([b"abc"], 3)
    with pytest.raises(ValueError, match="shingle"):
        _native.simhashes(["abc"], 0)
    with pytest.raises(TypeError):
        _native.simhashes(("abc",), 3)
    assert _native.simhashes([], 3) == b""


def test_within_matches_pairwise_hamming() -> None:
    import random

    rng = random.Random(5)
    fresh = [rng.getrandbits(64) for _ in range(40)]
    stored = [f ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for f in fresh[:20]]
    stored += [rng.getrandbits(64) for _ in range(3000)]  # several blocks
    near = _within(np.array(stored, dtype=np.uint64), np.array(fresh, dtype=np.uint64), 5)
    assert near.tolist() == [any(hamming(s, f) <= 5 for f in fresh) for s in stored]
    assert not _within(np.array(stored, dtype=np.uint64), np.array([], dtype=np.uint64), 5).any()


def test_probes_are_each_block_and_its_one_bit_neighbours() -> None:
    """`_native.probes` against the numpy it replaced, and its edge cases."""
    from responders import _native

    rng = random.Random(5)
    hashes = [0, 2**64 - 1, *(rng.getrandbits(64) for _ in range(500))]
    blocks_ = [(0, 22), (22, 22), (44, 20), (0, 64), (63, 1)]
    array = np.array(hashes, dtype=np.uint64)
    for (shift, width), listed in zip(blocks_, _native.probes(hashes, blocks_), strict=True):
        mask = np.uint64((1 << width) - 1) if width < 64 else np.uint64(2**64 - 1)
        values = (array >> np.uint64(shift)) & mask
        flips = np.uint64(1) << np.arange(width, dtype=np.uint64)
        want = np.unique(np.concatenate([values, (values[:, None] ^ flips).ravel()]))
        assert listed == ",".join(map(str, want.tolist()))
    assert _native.probes([], [(0, 22)]) == [""]
    with pytest.raises(ValueError):
        _native.probes([1], [(60, 8)])
    with pytest.raises(OverflowError):
        _native.probes([-1], [(0, 8)])


def test_probes_find_every_hash_within_distance_5() -> None:
    """Some block of a hash within distance 5 equals a probe of the fresh hash."""
    rng = random.Random(11)
    for _ in range(300):
        fresh = rng.getrandbits(64)
        near = fresh
        for bit in rng.sample(range(64), rng.randint(0, 5)):
            near ^= 1 << bit
        probes = [[int(v) for v in p.split(",")] for p in _probes([fresh, rng.getrandbits(64)])]
        assert all(p == sorted(set(p)) for p in probes)
        assert any(b in v for b, v in zip(blocks(near), probes, strict=True)), (fresh, near)
        shift = 0  # a block is its bands' bits, in place
        for block, (low, high) in zip(blocks(near), BLOCK_BANDS, strict=True):
            width = BAND_WIDTHS[low] + BAND_WIDTHS[high]
            assert block == (near >> shift) & ((1 << width) - 1)
            shift += width


@ON_BOTH
def test_candidates_are_every_stored_hash_within_distance(
    session: Session, store: EventStore
) -> None:
    """The indexed block lookups find what a brute-force search finds, of the events
    active within the window."""
    rng = random.Random(3)
    fresh = [rng.getrandbits(64) for _ in range(30)]
    stored = [f ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for f in fresh[:10]]
    stored += [f ^ sum(1 << b for b in rng.sample(range(64), 5)) for f in fresh[10:20]]
    stored += [f ^ sum(1 << b for b in rng.sample(range(64), 6)) for f in fresh[20:]]
    stored += [rng.getrandbits(64) for _ in range(500)]
    stale = [f ^ (1 << rng.randrange(64)) for f in fresh[:5]]  # near, but events too old
    now = datetime.now(UTC)
    long_ago = now - store.window - timedelta(hours=1)
    session.add_all(
        models.Event(id=f"e{i}", title="t", first_seen=now, last_seen=now)
        for i in range(len(stored))
    )
    session.add_all(
        models.Event(id=f"old{i}", title="t", first_seen=long_ago, last_seen=long_ago)
        for i in range(len(stale))
    )
    session.flush()
    store._store_fingerprints(session, [(f"e{i}", h) for i, h in enumerate(stored)])
    store._store_fingerprints(session, [(f"old{i}", h) for i, h in enumerate(stale)])
    posts = [PostRef(f"q{i}", "s", "x", now, fingerprint=h) for i, h in enumerate(fresh)]
    found = {c.fingerprint for c in store._candidates(session, posts)}
    assert found == {h for h in stored if any(hamming(h, f) <= 5 for f in fresh)}
    assert len(found) == 20


def test_bands_find_every_hash_within_distance_5() -> None:
    fp = simhash(STORY)
    for bit_set in ([0, 11, 22, 33, 44], [10, 21, 32, 43, 54], [63, 62, 61, 60, 59]):
        flipped = fp
        for bit in bit_set:
            flipped ^= 1 << bit
        assert hamming(fp, flipped) == 5
        assert any(a == b for a, b in zip(bands(fp), bands(flipped), strict=True))


def test_200_reposts_across_sources_are_one_event(session: Session, store: EventStore) -> None:
    refs = reposts(200)
    for start in range(0, 200, 50):  # four batches
        add(session, store, refs[start : start + 50])
    [event] = session.scalars(sa.select(models.Event)).all()
    assert event.id == event_id_for("p0")
    assert (event.post_count, event.source_count) == (200, 5)
    assert event.sources == sorted(SOURCES)
    assert event.first_seen == T0 and event.last_seen == T0 + timedelta(minutes=199 * 0.25)
    velocity = 200  # all within the hour up to the last post
    assert event.heat == pytest.approx(
        10 * math.log2(201) + 10 * math.log2(5) + 10 * math.log2(1 + velocity), abs=0.01
    )
    assert session.scalar(sa.select(sa.func.count()).select_from(models.EventPost)) == 200


def test_different_matter_topic_or_time_makes_another_event(
    session: Session, store: EventStore
) -> None:
    add(session, store, [ref(0)])
    result = add(
        session,
        store,
        [ref(1, OTHER), ref(2, topic="城市管理"), ref(3, minutes=73 * 60), ref(4, minutes=30)],
    )
    assert sum(t.created for t in result.touched.values()) == 3
    assert session.scalar(sa.select(sa.func.count()).select_from(models.Event)) == 4
    assert result.event_of["p4"] == event_id_for("p0")


def test_replay_counts_nothing_twice_and_survives_a_restart(
    session: Session, store: EventStore
) -> None:
    refs = reposts(30)
    add(session, store, refs[:20])
    again = add(session, EventStore(AlertRulesFile()), refs)  # a new process, overlapping batch
    assert set(again.touched) == {event_id_for("p0")}
    assert len(again.touched[event_id_for("p0")].new_posts) == 10
    replay = add(session, store, refs)
    assert replay.touched == {} and replay.replayed == {event_id_for("p0")}
    event = session.get(models.Event, event_id_for("p0"))
    assert event.post_count == 30


def test_heat_grows_with_velocity(session: Session, store: EventStore) -> None:
    add(session, store, reposts(10, minutes=0.5))
    fast = session.get(models.Event, event_id_for("p0")).heat
    slow_store = EventStore(AlertRulesFile())
    slow = [ref(100 + i, OTHER, minutes=i * 300) for i in range(10)]
    add(session, slow_store, slow)
    assert session.get(models.Event, event_id_for("p100")).heat < fast


def test_spike_of_a_topic_marks_its_events(session: Session, store: EventStore) -> None:
    # A quiet day: 1 post an hour on the topic, each a different matter.
    quiet = [
        ref(1000 + h, f"{OTHER} 第{h}号通知 {'甲乙丙丁' * (h % 5)}", minutes=h * 60 - 24 * 60)
        for h in range(24)
    ]
    result = add(session, store, quiet)
    assert not any(t.spike for t in result.touched.values())
    burst = add(session, store, reposts(30, minutes=1))
    [touched] = burst.touched.values()
    assert touched.spike
    assert touched.event.spike_at == T0 + timedelta(minutes=29)
    hours = dict(session.execute(sa.select(models.TopicHour.hour, models.TopicHour.posts)).all())
    assert hours[T0.replace(minute=0)] == 30
    assert hours[T0.replace(minute=0) - timedelta(hours=1)] == 1


def test_few_posts_never_spike(session: Session, store: EventStore) -> None:
    result = add(session, store, reposts(5))
    assert not any(t.spike for t in result.touched.values())


def test_severity_and_watchlists_accumulate(session: Session, store: EventStore) -> None:
    first = ref(0, severity=None)
    second = ref(1, severity="high")
    second.watchlists = ("district-fire-explosion",)
    add(session, store, [first])
    event = session.get(models.Event, event_id_for("p0"))
    assert event.severity is None
    add(session, store, [second, ref(2, severity="low")])
    assert (event.severity, event.watchlists) == ("high", ["district-fire-explosion"])


def test_script_text_is_kept_as_is(session: Session, store: EventStore) -> None:
    text = "<script>alert('x')</script> 小区门口垃圾堆积无人清理"
    add(session, store, [ref(0, text)])
    event = session.get(models.Event, event_id_for("p0"))
    assert event.title == text


def test_lock_keys_are_one_per_topic_band_sorted() -> None:
    """Each (topic, band index, band value) has its own key, the same in every worker;
    reposts share theirs; the keys come sorted, each once."""
    rng = random.Random(5)
    fps = [rng.getrandbits(64) for _ in range(300)]
    topics = [_topic_lock_base(t) for t in ("环境保护", "城市管理", "")]
    bases = [topics[i % 3] for i in range(300)]
    keys = lock_keys(fps + fps[:50], bases + bases[:50])
    assert keys == sorted(set(keys))
    expected = {
        (base, i, band)
        for fp, base in zip(fps, bases, strict=True)
        for i, band in enumerate(bands(fp))
    }
    assert len(keys) == len(expected)
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert lock_keys([fps[0]], [bases[0]]) == sorted(
        bases[0] | (i << 11) | band for i, band in enumerate(bands(fps[0]))
    )
    assert lock_keys([], []) == []


def file_while_another_holds(engine, held: list[PostRef], waiting: list[PostRef]):
    """PostgreSQL, two workers at once: one files `held` and keeps its transaction open;
    another then files `waiting` and must wait on its locks (checked: it has not
    finished a second later) until the first commits. Returns the second's result."""
    import threading

    from pipeline.storage.db import session_factory

    sessions = session_factory(engine)
    done: list[ClusterResult] = []

    def file_waiting() -> None:
        with sessions() as other:
            done.append(EventStore(AlertRulesFile()).add(other, waiting))
            other.commit()

    with sessions() as session:
        EventStore(AlertRulesFile()).add(session, held)
        worker = threading.Thread(target=file_waiting)
        worker.start()
        worker.join(1.0)
        assert worker.is_alive() and not done  # waiting on the first's locks
        session.commit()
    worker.join(10)
    [result] = done
    return result


def only_event(session: Session) -> models.Event:
    [event] = session.scalars(sa.select(models.Event)).all()
    return event


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_two_workers_clustering_one_story_at_once_open_one_event(engine, session) -> None:
    """PostgreSQL: a worker filing a repost waits for the advisory locks of another that
    is filing the original and has not committed; it then finds that event rather
    than opening a second one."""
    first, second = ref(0), ref(1, f"转发微博 //@网友1: 关注 //@本地通: {STORY}")
    store_posts(session, [first, second])
    session.commit()
    file_while_another_holds(engine, [first], [second])
    event = only_event(session)
    assert event.id == event_id_for("p0") and event.post_count == 2


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_two_workers_reaching_one_event_through_different_bands_both_count(
    engine, session, store, monkeypatch
) -> None:
    """PostgreSQL: two posts that join one stored event but share no band with each other
    take different advisory locks. The second worker waits on the event's row until the
    first commits, then counts on from its row: the event ends with both posts, not with
    the count of whichever wrote last."""
    from responders import events

    # Hand-picked hashes: the story at 0; one post with a bit in each band but the
    # first, the other in each band but the second, at different places. Each is 5 bits
    # from the story (it joins its event) and differs from the other in every band.
    shifts = [shift for shift, _ in events._BANDS]
    one = sum(1 << (shift + 1) for shift in shifts[1:])
    two = sum(1 << (shift + 2) for i, shift in enumerate(shifts) if i != 1)
    assert all(a != b for a, b in zip(bands(one), bands(two), strict=True))
    assert hamming(one, 0) == hamming(two, 0) == MAX_DISTANCE
    hashes = {"故事": 0, "一": one, "二": two}
    monkeypatch.setattr(events, "simhashes", lambda texts, shingle: [hashes[t] for t in texts])
    story, first, second = ref(0, "故事"), ref(1, "一", minutes=1), ref(2, "二", minutes=2)
    add(session, store, [story])
    store_posts(session, [first, second])
    session.commit()
    file_while_another_holds(engine, [first], [second])
    session.expire_all()
    event = only_event(session)
    assert event.post_count == 3 and event.source_count == 3
    members = session.scalars(sa.select(models.EventPost.post_id)).all()
    assert sorted(members) == ["p0", "p1", "p2"]


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_a_post_two_workers_hold_at_once_is_filed_once(engine, session) -> None:
    """PostgreSQL: a batch redelivered during a rebalance can be in two workers' hands at
    once. The second waits on the first's locks, then finds the post filed (a replay):
    its event counts it once."""
    store_posts(session, [ref(0)])
    session.commit()
    again = file_while_another_holds(engine, [ref(0)], [ref(0)])
    assert not again.touched and again.replayed == {event_id_for("p0")}
    assert only_event(session).post_count == 1
