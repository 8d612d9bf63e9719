"""The bus contract: one suite, run against every transport (`local` and `kafka`).

Written against `pipeline.bus.base` only. Each `bus_factory()` call is a new Bus on the
same backend, standing for another (or a restarted) process. Topics are created
explicitly (Kafka brokers need not auto-create) and all names carry `unique`, because
the Kafka broker is shared by the whole session.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.bus.base import Bus, Record, TopicPartition
from tests.pipeline.bus.conftest import (
    BusFactory,
    drain,
    partitions_of,
    poll_for,
    positions,
    publish_all,
    wait_for_assignment,
)

PARTITIONS = 4


@pytest.fixture
def topic(bus_factory: BusFactory, unique: str) -> str:
    name = f"contract.{unique}"
    bus_factory().create_topics({name: PARTITIONS})
    return name


@pytest.fixture
def group(unique: str) -> str:
    return f"group-{unique}"


def committed_or_zero(bus: Bus, topic: str, group: str) -> dict[int, int]:
    """Committed offsets with None as 0: a partition that never had a record may have
    no commit (local) or a commit of 0 (Kafka commits every assigned position)."""
    return {p: v or 0 for p, v in bus.committed(topic, group).items()}


def keyed(n: int, prefix: str = "v") -> list[tuple[bytes, bytes]]:
    return [(f"key-{i}".encode(), f"{prefix}{i}".encode()) for i in range(n)]


def test_round_trip_with_key_and_headers(bus_factory: BusFactory, topic: str, group: str) -> None:
    bus = bus_factory()
    before_ms = int(time.time() * 1000)
    with bus.producer() as producer:
        producer.publish(
            topic,
            b"hello \xe4\xb8\x96",
            key=b"k1",
            headers=[("trace-id", b"abc"), ("bin", b"\x00\xff")],
        )
        producer.publish(topic, b"no key, no headers")
        producer.flush()
    after_ms = int(time.time() * 1000)

    with bus_factory().consumer([topic], group) as consumer:
        records = drain(consumer, 2)
    assert len(records) == 2
    by_value = {r.value: r for r in records}
    first = by_value[b"hello \xe4\xb8\x96"]
    assert first.topic == topic
    assert first.key == b"k1"
    assert first.headers == (("trace-id", b"abc"), ("bin", b"\x00\xff"))
    assert 0 <= first.partition < PARTITIONS
    assert first.offset == 0  # first record of its partition
    # publish time, allowing for a broker that stamps on append and a little clock skew
    assert before_ms - 1000 <= first.timestamp_ms <= after_ms + 1000
    second = by_value[b"no key, no headers"]
    assert second.key is None
    assert second.headers == ()


def test_per_key_order_holds_with_many_keys_interleaved(
    bus_factory: BusFactory, topic: str, group: str
) -> None:
    keys = [f"dept-{k}".encode() for k in range(7)]
    per_key = 30
    publish_all(
        bus_factory(),
        topic,
        ((key, f"{key.decode()}:{seq}".encode()) for seq in range(per_key) for key in keys),
    )

    with bus_factory().consumer([topic], group) as consumer:
        records = drain(consumer, len(keys) * per_key)
    assert len(records) == len(keys) * per_key
    seen: dict[bytes, list[Record]] = defaultdict(list)
    for record in records:
        assert record.key is not None
        seen[record.key].append(record)
    for key in keys:
        got = seen[key]
        assert [int(r.value.split(b":")[1]) for r in got] == list(range(per_key)), key
        assert len({r.partition for r in got}) == 1, "one key, one partition"
        assert [r.offset for r in got] == sorted(r.offset for r in got)


def test_uncommitted_records_come_again_after_a_crash(
    bus_factory: BusFactory, topic: str, group: str
) -> None:
    publish_all(bus_factory(), topic, keyed(10))

    crashed = bus_factory().consumer([topic], group)
    first = drain(crashed, 10)
    assert len(first) == 10
    crashed.close()  # gone before committing

    with bus_factory().consumer([topic], group) as consumer:  # a restarted process
        again = drain(consumer, 10)
        consumer.commit()
    assert sorted(positions(again)) == sorted(positions(first))
    assert sorted(r.value for r in again) == sorted(r.value for r in first)


def test_committed_offsets_survive_a_restart(
    bus_factory: BusFactory, topic: str, group: str
) -> None:
    publish_all(bus_factory(), topic, keyed(10, "old"))
    first_bus = bus_factory()
    with first_bus.consumer([topic], group) as consumer:
        assert len(drain(consumer, 10)) == 10
        consumer.commit()
    first_bus.close()

    bus = bus_factory()
    assert committed_or_zero(bus, topic, group) == bus.end_offsets(topic)
    with bus.consumer([topic], group) as consumer:
        redelivered = wait_for_assignment(consumer, partitions_of(topic, PARTITIONS))
        redelivered += poll_for(consumer, 1.0)
        assert redelivered == [], "committed records must not come again"
        publish_all(bus, topic, keyed(5, "new"))
        fresh = drain(consumer, 5)
        consumer.commit(fresh)
        fresh += poll_for(consumer, 0.5)
    assert sorted(r.value for r in fresh) == sorted(f"new{i}".encode() for i in range(5))
    assert sum(v or 0 for v in bus.committed(topic, group).values()) == 15


def test_commit_of_given_records_stores_highest_offset_plus_one(
    bus_factory: BusFactory, unique: str, group: str
) -> None:
    topic = f"single.{unique}"
    bus = bus_factory()
    bus.create_topics({topic: 1})
    publish_all(bus, topic, ((None, f"m{i}".encode()) for i in range(10)))
    with bus.consumer([topic], group) as consumer:
        records = drain(consumer, 10)
        assert [r.offset for r in records] == list(range(10))
        consumer.commit(records[:4])
    assert bus.committed(topic, group) == {0: 4}
    with bus_factory().consumer([topic], group) as consumer:
        rest = drain(consumer, 6)
        rest += poll_for(consumer, 0.5)
    assert [r.offset for r in rest] == list(range(4, 10))


def consume_all_and_commit(bus: Bus, topic: str, group: str, n: int) -> list[Record]:
    with bus.consumer([topic], group) as consumer:
        records = drain(consumer, n)
        consumer.commit()
    return records


def test_replay_with_reset_to_offset(bus_factory: BusFactory, topic: str, group: str) -> None:
    bus = bus_factory()
    publish_all(bus, topic, keyed(12))
    original = consume_all_and_commit(bus_factory(), topic, group, 12)
    assert len(original) == 12
    ends = bus.end_offsets(topic)
    assert sum(ends.values()) == 12
    assert committed_or_zero(bus, topic, group) == ends

    assert bus.reset_offsets(topic, group, to_offset=0) == dict.fromkeys(range(PARTITIONS), 0)
    assert bus.committed(topic, group) == dict.fromkeys(range(PARTITIONS), 0)
    replayed = consume_all_and_commit(bus_factory(), topic, group, 12)
    assert sorted(positions(replayed)) == sorted(positions(original))

    # clamped to what exists
    assert bus.reset_offsets(topic, group, to_offset=10**9) == ends
    assert bus.reset_offsets(topic, group, to_offset=1) == {p: min(1, e) for p, e in ends.items()}
    expected = sorted(pos for pos in positions(original) if pos[2] >= 1)
    with bus_factory().consumer([topic], group) as consumer:
        tail = drain(consumer, len(expected))
        tail += poll_for(consumer, 0.5)
    assert sorted(positions(tail)) == expected


def test_replay_with_reset_to_time(bus_factory: BusFactory, topic: str, group: str) -> None:
    bus = bus_factory()
    publish_all(bus, topic, keyed(6, "early"))
    time.sleep(0.3)
    middle = datetime.now(UTC)
    time.sleep(0.3)
    publish_all(bus, topic, keyed(6, "late"))
    assert len(consume_all_and_commit(bus_factory(), topic, group, 12)) == 12

    moved = bus.reset_offsets(topic, group, to_time=middle)
    assert sum(moved.values()) == 6  # each partition: past its "early" records
    with bus_factory().consumer([topic], group) as consumer:
        late = drain(consumer, 6)
        late += poll_for(consumer, 0.5)
        consumer.commit()
    assert sorted(r.value for r in late) == sorted(f"late{i}".encode() for i in range(6))

    assert bus.reset_offsets(
        topic, group, to_time=datetime.now(UTC) + timedelta(hours=1)
    ) == bus.end_offsets(topic)
    assert bus.reset_offsets(
        topic, group, to_time=datetime(2000, 1, 1, tzinfo=UTC)
    ) == dict.fromkeys(range(PARTITIONS), 0)


class GroupWorker(threading.Thread):
    """A group member in a thread of its own (as it would be in a process of its own):
    poll, commit, repeat, until stopped; then close (leaving the group)."""

    def __init__(self, bus: Bus, topic: str, group: str) -> None:
        super().__init__(daemon=True)
        self.bus, self.topic, self.group = bus, topic, group
        self.lock = threading.Lock()
        self.records: list[Record] = []
        self.assigned: set[TopicPartition] = set()
        self.problems: list[str] = []
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.bus.consumer([self.topic], self.group) as consumer:
                while not self.stopping.is_set():
                    got = consumer.poll(max_records=50, timeout=0.2)
                    assigned = consumer.assignment()
                    if got:
                        outside = {TopicPartition(r.topic, r.partition) for r in got} - assigned
                        if outside:
                            self.problems.append(f"records from unassigned {outside}")
                        consumer.commit(got)
                    with self.lock:
                        self.records.extend(got)
                        self.assigned = assigned
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test by finish()
            self.error = exc

    def snapshot(self) -> tuple[set[TopicPartition], list[Record]]:
        with self.lock:
            return set(self.assigned), list(self.records)

    def finish(self) -> None:
        self.stopping.set()
        self.join(30)
        assert not self.is_alive(), "worker did not stop"
        if self.error is not None:
            raise self.error
        assert not self.problems, self.problems


def wait_until(condition: object, what: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not condition():  # type: ignore[operator]
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_two_consumers_split_partitions_and_one_takes_over(
    bus_factory: BusFactory, topic: str, group: str
) -> None:
    everything = partitions_of(topic, PARTITIONS)
    one, two = GroupWorker(bus_factory(), topic, group), GroupWorker(bus_factory(), topic, group)
    one.start()
    two.start()
    try:

        def split() -> bool:
            a, b = one.snapshot()[0], two.snapshot()[0]
            return bool(a) and bool(b) and a.isdisjoint(b) and a | b == everything

        wait_until(split, "both members to own partitions")
        publish_all(bus_factory(), topic, keyed(40, "a"))
        wait_until(
            lambda: len(one.snapshot()[1]) + len(two.snapshot()[1]) >= 40,
            "the 40 records to be consumed",
        )
        time.sleep(0.5)  # anything delivered twice would show up now
        (own_one, got_one), (own_two, got_two) = one.snapshot(), two.snapshot()
        assert got_one and got_two, "both members got work"
        assert {TopicPartition(r.topic, r.partition) for r in got_one} <= own_one
        assert {TopicPartition(r.topic, r.partition) for r in got_two} <= own_two
        assert set(positions(got_one)).isdisjoint(positions(got_two)), "delivered twice"
        assert len(got_one) + len(got_two) == 40

        two.finish()  # leaves the group; the other member takes its partitions over
        wait_until(lambda: one.snapshot()[0] == everything, "the takeover")
        publish_all(bus_factory(), topic, keyed(20, "b"))
        wait_until(lambda: len(one.snapshot()[1]) >= len(got_one) + 20, "the 20 later records")
        time.sleep(0.5)
        _, after = one.snapshot()
        later = after[len(got_one) :]
        assert sorted(r.value for r in later) == sorted(f"b{i}".encode() for i in range(20)), (
            "only the new records: what the other member committed is not delivered again"
        )
    finally:
        for worker in (one, two):
            if worker.is_alive():
                worker.finish()


def test_offsets_and_lag(bus_factory: BusFactory, topic: str, group: str) -> None:
    bus = bus_factory()
    assert bus.end_offsets(topic) == dict.fromkeys(range(PARTITIONS), 0)
    assert bus.committed(topic, group) == dict.fromkeys(range(PARTITIONS), None)

    with bus_factory().consumer([topic], group) as consumer:
        assert wait_for_assignment(consumer, partitions_of(topic, PARTITIONS)) == []
        publish_all(bus, topic, keyed(20))
        ends = bus.end_offsets(topic)
        assert set(ends) == set(range(PARTITIONS))
        assert sum(ends.values()) == 20

        first = drain(consumer, 8)
        assert len(first) == 8
        assert consumer.lag() == {topic: 12}
        consumer.commit()
        committed = bus.committed(topic, group)
        assert sum(v or 0 for v in committed.values()) == 8
        for record in first:
            assert (committed[record.partition] or 0) > record.offset

        rest = drain(consumer, 12)
        assert len(rest) == 12
        assert consumer.lag() == {topic: 0}
        consumer.commit(rest)
    assert committed_or_zero(bus, topic, group) == ends
    assert set(positions(first)).isdisjoint(positions(rest))


def test_create_topics_is_idempotent_and_topics_lists_them(
    bus_factory: BusFactory, unique: str
) -> None:
    bus = bus_factory()
    wide, narrow = f"wide.{unique}", f"narrow.{unique}"
    bus.create_topics({wide: 4, narrow: 2})
    bus.create_topics({wide: 4})
    bus.create_topics({wide: 8, narrow: 1})  # existing topics are left alone
    listed = bus_factory().topics()
    assert listed[wide] == 4
    assert listed[narrow] == 2
    assert bus.end_offsets(narrow) == {0: 0, 1: 0}
