"""Bus fixtures: the same factory API over both transports, for the contract suite."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from pipeline.bus.base import Bus, Consumer, Record, TopicPartition

BusFactory = Callable[[], Bus]


@pytest.fixture(params=["local", "kafka"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def bus_factory(
    transport: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[BusFactory]:
    """Makes new Bus instances on one shared backend: the same SQLite file for `local`,
    the same broker for `kafka`. A fresh instance stands for a restarted process."""
    opened: list[Bus] = []

    def make() -> Bus:
        if transport == "kafka":
            from pipeline.bus.kafka import KafkaBus

            broker = request.getfixturevalue("kafka_broker")
            bus: Bus = KafkaBus(broker, client_id="yuqing-test", session_timeout_ms=6000)
        else:
            from pipeline.bus.local import LocalBus

            bus = LocalBus(tmp_path / "bus.sqlite3", retention_hours=24)
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        bus.close()


# -- helpers for bus tests (import them from here) ------------------------------------
# Every wait is a poll loop with a deadline: a Kafka consumer needs a few seconds to join
# its group (and again after a rebalance), the local bus a few milliseconds.

DEADLINE = 30.0


def drain(consumer: Consumer, n: int, deadline: float = DEADLINE) -> list[Record]:
    """Poll until `n` records arrived or `deadline` s passed; never asks for more than
    the `n` still missing, so nothing beyond them is consumed."""
    out: list[Record] = []
    end = time.monotonic() + deadline
    while len(out) < n and time.monotonic() < end:
        out.extend(consumer.poll(max_records=n - len(out), timeout=0.5))
    return out


def poll_for(consumer: Consumer, seconds: float) -> list[Record]:
    """Everything the consumer gets within `seconds`."""
    out: list[Record] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        out.extend(consumer.poll(timeout=min(left, 0.5)))
    return out


def wait_for_assignment(
    consumer: Consumer, expected: set[TopicPartition], deadline: float = DEADLINE
) -> list[Record]:
    """Poll until the consumer owns exactly `expected`; returns records got meanwhile."""
    out: list[Record] = []
    end = time.monotonic() + deadline
    while consumer.assignment() != expected:
        if time.monotonic() > end:
            raise AssertionError(f"assignment {consumer.assignment()} never became {expected}")
        out.extend(consumer.poll(timeout=0.2))
    return out


def partitions_of(topic: str, n: int) -> set[TopicPartition]:
    return {TopicPartition(topic, p) for p in range(n)}


def positions(records: Iterable[Record]) -> list[tuple[str, int, int]]:
    """(topic, partition, offset) of each record, in order."""
    return [(r.topic, r.partition, r.offset) for r in records]


def publish_all(bus: Bus, topic: str, items: Iterable[tuple[bytes | None, bytes]]) -> None:
    """Publish (key, value) pairs and flush."""
    with bus.producer() as producer:
        for key, value in items:
            producer.publish(topic, value, key=key)
        producer.flush()
