"""Tests of the embedded `local` bus beyond the contract: several processes on one file,
crashes, member expiry, retention, auto-created topics."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest

from pipeline.bus.base import BusError, Record, TopicPartition
from pipeline.bus.local import LocalBus
from tests.pipeline.bus.conftest import (
    drain,
    partitions_of,
    poll_for,
    positions,
    publish_all,
    wait_for_assignment,
)

# Child processes are spawned, never forked: a forked child must not use the parent's
# SQLite connections, and a fresh interpreter is what a separate worker really is.
spawn = multiprocessing.get_context("spawn")
PROCESS_DEADLINE = 60.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "bus.sqlite3"  # parents are created


@pytest.fixture
def bus(path: Path) -> LocalBus:
    b = LocalBus(path, retention_hours=24)
    yield b
    b.close()


def join_all(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.join(PROCESS_DEADLINE)
    for process in processes:
        if process.is_alive():
            process.kill()
    assert [p.exitcode for p in processes] == [0] * len(processes)


# -- several processes --------------------------------------------------------------


def _produce(path: str, topic: str, writer: int, count: int) -> None:
    with LocalBus(path, retention_hours=24) as bus, bus.producer() as producer:
        for seq in range(count):
            key = None if seq % 10 == 9 else f"w{writer}-k{seq % 25}".encode()
            producer.publish(topic, f"{writer}:{seq}".encode(), key=key)
            if seq % 700 == 0:
                producer.flush()  # mix explicit flushes with the automatic ones


def test_processes_publishing_at_once_lose_nothing_and_offsets_stay_dense(
    bus: LocalBus, path: Path
) -> None:
    topic, writers, count = "multi", 3, 3000
    bus.create_topics({topic: 6})
    procs = [
        spawn.Process(target=_produce, args=(str(path), topic, w, count)) for w in range(writers)
    ]
    for p in procs:
        p.start()
    join_all(procs)

    ends = bus.end_offsets(topic)
    assert sum(ends.values()) == writers * count
    with bus.consumer([topic], "check") as consumer:
        records = drain(consumer, writers * count)
        assert poll_for(consumer, 0.2) == []
    by_partition: dict[int, list[int]] = defaultdict(list)
    for r in records:
        by_partition[r.partition].append(r.offset)
    assert {p: sorted(o) for p, o in by_partition.items()} == {
        p: list(range(end)) for p, end in ends.items() if end
    }, "dense, each offset once"
    values = [r.value for r in records]
    assert len(set(values)) == writers * count, "no duplicates"
    # each writer's records of one key keep their order
    last: dict[bytes, int] = {}
    for r in records:
        if r.key is not None:
            seq = int(r.value.split(b":")[1])
            assert last.get(r.key, -1) < seq
            last[r.key] = seq


def _open_and_publish(path: str, writer: int) -> None:
    with LocalBus(path, retention_hours=24) as bus, bus.producer() as producer:
        for seq in range(300):
            producer.publish("born-at-once", f"{writer}:{seq}".encode(), key=str(seq).encode())


def test_processes_creating_the_file_and_topic_at_once(path: Path) -> None:
    procs = [spawn.Process(target=_open_and_publish, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    join_all(procs)
    with LocalBus(path, 24) as bus:
        assert bus.topics() == {"born-at-once": 6}
        assert sum(bus.end_offsets("born-at-once").values()) == 1200


def _consume(path: str, topic: str, group: str, stop: object, results: object) -> None:
    got: list[tuple[int, int]] = []
    with LocalBus(path, retention_hours=24) as bus, bus.consumer([topic], group) as consumer:
        while not stop.is_set():  # type: ignore[attr-defined]
            records = consumer.poll(max_records=100, timeout=0.1)
            consumer.commit(records)
            got.extend((r.partition, r.offset) for r in records)
    results.put(got)  # type: ignore[attr-defined]


def test_consumer_processes_of_one_group_split_the_work_without_loss(
    bus: LocalBus, path: Path
) -> None:
    topic, group, total = "work", "workers", 3000
    bus.create_topics({topic: 6})
    stop, results = spawn.Event(), spawn.Queue()
    procs = [
        spawn.Process(target=_consume, args=(str(path), topic, group, stop, results))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    try:
        deadline = time.monotonic() + PROCESS_DEADLINE
        while True:
            owned = list(bus.describe_group(group).values())
            if (
                len(owned) == 3
                and all(len(o) == 2 for o in owned)
                and set().union(*owned) == partitions_of(topic, 6)
            ):
                break
            assert time.monotonic() < deadline, f"group never settled: {owned}"
            time.sleep(0.05)
        with bus.producer() as producer:
            for i in range(total):
                producer.publish(topic, f"m{i}".encode(), key=f"k{i}".encode())
                if i % 100 == 99:
                    producer.flush()
                    time.sleep(0.005)  # a stream, not one lump
        while sum(v or 0 for v in bus.committed(topic, group).values()) < total:
            assert time.monotonic() < deadline, "workers did not commit everything"
            time.sleep(0.05)
    finally:
        stop.set()
    shares = [results.get(timeout=PROCESS_DEADLINE) for _ in procs]
    join_all(procs)
    assert all(shares), "every process got a share"
    everything = [pos for share in shares for pos in share]
    assert len(everything) == total and len(set(everything)) == total, "no loss, no duplicate"


def _consume_then_die(path: str, topic: str, group: str, commit_first: int) -> None:
    bus = LocalBus(path, retention_hours=24, session_timeout=1.0)
    consumer = bus.consumer([topic], group)
    records = drain(consumer, 40)
    consumer.commit(records[:commit_first])
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no leave: a crash


def test_records_of_a_killed_consumer_process_come_again(bus: LocalBus, path: Path) -> None:
    topic, group = "crash", "crashy"
    bus.create_topics({topic: 4})
    publish_all(bus, topic, ((f"k{i}".encode(), f"v{i}".encode()) for i in range(40)))
    child = spawn.Process(target=_consume_then_die, args=(str(path), topic, group, 15))
    child.start()
    child.join(PROCESS_DEADLINE)
    assert child.exitcode == -signal.SIGKILL
    committed = bus.committed(topic, group)
    assert 0 < sum(v or 0 for v in committed.values()) < 40

    with bus.consumer([topic], group) as consumer:  # takes over after the dead one expires
        started = time.monotonic()
        again = drain(consumer, 40 - sum(v or 0 for v in committed.values()))
        waited = time.monotonic() - started
        assert poll_for(consumer, 0.3) == []
        assert consumer.assignment() == partitions_of(topic, 4)
    assert 0.5 < waited < 10, "the dead member held its partitions for its session timeout"
    assert all(r.offset >= (committed[r.partition] or 0) for r in again)


# -- group membership in one process ---------------------------------------------------


def test_expired_member_loses_its_partitions_and_resumes_from_committed_offsets(
    path: Path,
) -> None:
    topic, group = "expiry", "g"
    everything = partitions_of(topic, 4)
    # this member stops heartbeating when it has not polled for 0.5 s (a stuck process)
    stuck_bus = LocalBus(path, 24, session_timeout=0.5, max_poll_interval=0.5)
    other_bus = LocalBus(path, 24, session_timeout=0.5)
    try:
        stuck_bus.create_topics({topic: 4})
        publish_all(stuck_bus, topic, ((f"k{i}".encode(), b"first") for i in range(20)))
        stuck = stuck_bus.consumer([topic], group)
        assert len(drain(stuck, 20)) == 20  # read, never committed
        assert stuck.assignment() == everything

        other = other_bus.consumer([topic], group)
        again = wait_for_assignment(other, everything, deadline=10)
        again += drain(other, 20 - len(again))
        assert sorted(positions(again)) == sorted(
            (topic, p, o) for p, end in stuck_bus.end_offsets(topic).items() for o in range(end)
        )
        # commit only the first record of each partition
        firsts = [r for r in again if r.offset == 0]
        other.commit(firsts)

        # the stuck member comes back: it rejoins, and the partitions it gets again start
        # at the committed offset (1), not at its old in-memory position (the end)
        back = stuck.poll(timeout=0.2)
        deadline = time.monotonic() + 10
        while not (
            stuck.assignment()
            and other.assignment()
            and stuck.assignment() | other.assignment() == everything
        ):
            back += stuck.poll(timeout=0.1)
            other.poll(timeout=0.1)  # gives partitions up; commits nothing
            assert time.monotonic() < deadline
        back += poll_for(stuck, 0.3)
        expected = sorted(
            (topic, r.partition, r.offset)
            for r in again
            if r.offset >= 1 and TopicPartition(topic, r.partition) in stuck.assignment()
        )
        assert expected and sorted(positions(back)) == expected
        other.close()
        stuck.close()
    finally:
        stuck_bus.close()
        other_bus.close()


def test_partitions_change_hands_only_after_the_owner_gives_them_up(bus: LocalBus) -> None:
    topic, group = "handover", "g"
    bus.create_topics({topic: 2})
    publish_all(bus, topic, ((f"k{i}".encode(), b"x") for i in range(20)))
    first = bus.consumer([topic], group)
    batch = first.poll(max_records=4)
    assert batch
    second = bus.consumer([topic], group)
    # the first member has not polled since: it still owns both, the second waits
    assert second.poll(timeout=0.2) == []
    assert second.assignment() == set()
    first.commit(batch)
    first.poll(max_records=1, timeout=0)  # gives one partition up...
    mine = first.assignment()
    assert len(mine) == 1
    got = wait_for_assignment(second, partitions_of(topic, 2) - mine)
    got += poll_for(second, 0.3)
    # ...which the second member reads from the committed offset
    assert not set(positions(got)) & set(positions(batch))
    first.close()
    second.close()


def test_reset_is_refused_while_the_group_has_live_members(bus: LocalBus) -> None:
    bus.create_topics({"t": 2})
    with bus.consumer(["t"], "g"):
        with pytest.raises(BusError, match="active member"):
            bus.reset_offsets("t", "g", to_offset=0)
        # another group is fine
        assert bus.reset_offsets("t", "other", to_offset=0) == {0: 0, 1: 0}
    assert bus.reset_offsets("t", "g", to_offset=0) == {0: 0, 1: 0}
    with pytest.raises(ValueError):
        bus.reset_offsets("t", "g")
    with pytest.raises(BusError, match="unknown topic"):
        bus.reset_offsets("nope", "g", to_offset=0)


# -- retention -------------------------------------------------------------------------


def test_retention_deletes_old_records_and_offsets_stay_monotonic(path: Path) -> None:
    bus = LocalBus(path, retention_hours=1 / 3600)  # one second
    try:
        bus.create_topics({"r": 2})
        publish_all(bus, "r", ((f"k{i}".encode(), b"old") for i in range(10)))
        time.sleep(1.2)
        publish_all(bus, "r", ((f"k{i}".encode(), b"new") for i in range(6)))
        ends = bus.end_offsets("r")
        assert bus.apply_retention() == 10
        assert bus.end_offsets("r") == ends, "end offsets do not move back"

        with bus.consumer(["r"], "g") as consumer:
            left = drain(consumer, 6)
            assert poll_for(consumer, 0.2) == []
            consumer.commit()
        assert {r.value for r in left} == {b"new"}
        old_ends = {p: e - sum(1 for r in left if r.partition == p) for p, e in ends.items()}
        assert sorted(positions(left)) == sorted(
            ("r", p, o) for p, e in ends.items() for o in range(old_ends[p], e)
        )

        # reset clamps to the earliest retained record; new records continue the offsets
        assert bus.reset_offsets("r", "g", to_offset=0) == old_ends
        publish_all(bus, "r", ((f"k{i}".encode(), b"newer") for i in range(4)))
        with bus.consumer(["r"], "g") as consumer:
            got = drain(consumer, 10)
        newer = [r for r in got if r.value == b"newer"]
        assert len(newer) == 4
        assert all(r.offset >= ends[r.partition] for r in newer), "offsets never reused"
    finally:
        bus.close()


def test_retention_runs_on_flush(path: Path) -> None:
    bus = LocalBus(path, retention_hours=1 / 3600, retention_interval=0)
    try:
        publish_all(bus, "auto", ((b"k", b"old") for _ in range(5)))
        time.sleep(1.2)
        publish_all(bus, "auto", [(b"k", b"new")])  # this flush applies retention
        with bus.consumer(["auto"], "g") as consumer:
            got = drain(consumer, 1) + poll_for(consumer, 0.2)
        assert [(r.value, r.offset) for r in got] == [(b"new", 5)]
    finally:
        bus.close()


# -- topics, producers, lifecycle --------------------------------------------------------


def test_publishing_creates_the_topic_with_the_default_partition_count(path: Path) -> None:
    with LocalBus(path, 24, default_partitions=3) as bus:
        with bus.producer() as producer:
            for i in range(30):
                producer.publish("fresh", f"{i}".encode())  # no key: round-robin
        assert bus.topics() == {"fresh": 3}
        assert bus.end_offsets("fresh") == {0: 10, 1: 10, 2: 10}


def test_producer_flushes_by_itself_and_on_close(bus: LocalBus) -> None:
    producer = bus.producer()
    for i in range(2500):
        producer.publish("auto", f"{i}".encode(), key=b"k")
    assert sum(bus.end_offsets("auto").values()) >= 2000  # buffer written every ~1000
    producer.close()
    assert sum(bus.end_offsets("auto").values()) == 2500
    producer.close()  # idempotent
    with pytest.raises(BusError):
        producer.publish("auto", b"late")


def test_bad_input_is_refused(bus: LocalBus) -> None:
    with bus.producer() as producer:
        with pytest.raises(BusError, match="invalid topic"):
            producer.publish("no spaces", b"x")
        with pytest.raises(TypeError):
            producer.publish("t", "not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bus.create_topics({"t": 0})
    with pytest.raises(BusError, match="unknown topic"):
        bus.end_offsets("missing")


def test_consumer_waits_for_a_topic_that_does_not_exist_yet(bus: LocalBus) -> None:
    with bus.consumer(["later"], "g") as consumer:
        assert consumer.poll(timeout=0.1) == []
        assert consumer.lag() == {"later": 0}
        publish_all(bus, "later", [(b"k", b"v")])
        got: list[Record] = drain(consumer, 1)
    assert [r.value for r in got] == [b"v"]


def test_close_is_idempotent_and_closes_what_the_bus_made(path: Path) -> None:
    bus = LocalBus(path, 24)
    producer = bus.producer()
    producer.publish("t", b"buffered")
    consumer = bus.consumer(["t"], "g")
    bus.close()
    bus.close()
    with pytest.raises(BusError):
        consumer.poll(timeout=0)
    with pytest.raises(BusError):
        bus.producer()
    with LocalBus(path, 24) as reopened:
        assert sum(reopened.end_offsets("t").values()) == 1, "closing flushed the producer"
        assert reopened.describe_group("g") == {}, "closing left the group"
