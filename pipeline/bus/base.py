"""The bus interface every transport implements.

Stages only ever see these types, so a stage written against the embedded `local`
transport runs unchanged on a Kafka cluster. Semantics follow Kafka's:

- a topic has N partitions; a record's key picks its partition (same key, same
  partition, so per-key order holds); a record without key goes to any partition;
- offsets are per (topic, partition), dense and increasing from 0;
- a consumer group owns one committed offset per partition: the offset of the next
  record to read. Consumers of one group split the partitions between them;
- delivery is at-least-once: nothing is committed implicitly; a consumer that dies
  before `commit` gets its uncommitted records delivered again.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

Headers = Sequence[tuple[str, bytes]]

# Kafka's rule for topic names, applied by both transports so names port over.
TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


@dataclass(frozen=True, slots=True)
class Record:
    """One message read from the bus."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


class BusError(RuntimeError):
    """A transport failed in a way the caller should report (broker down, bad topic)."""


def check_topic(name: object) -> None:
    """BusError unless `name` is a valid topic name."""
    if not isinstance(name, str) or not TOPIC_NAME.match(name) or name in (".", ".."):
        raise BusError(f"invalid topic name {name!r} (letters, digits, '.', '_', '-')")


def as_bytes(value: object, what: str) -> bytes:
    """Keys, values and header values are bytes; say which one was not."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


class Producer(ABC):
    """Publishes records. `publish` may buffer; `flush` returns once every buffered
    record is durably stored (acks=all on Kafka, a committed SQLite transaction locally)."""

    @abstractmethod
    def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()
    ) -> None: ...

    @abstractmethod
    def flush(self, timeout: float | None = None) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Consumer(ABC):
    """Reads records for one consumer group. Never commits on its own."""

    @abstractmethod
    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        """Return up to `max_records` records (possibly none) within about `timeout` s."""

    @abstractmethod
    def commit(self, records: Iterable[Record] | None = None) -> None:
        """Commit past the given records (highest offset + 1 per partition); with no
        argument, past everything returned by `poll` so far."""

    @abstractmethod
    def assignment(self) -> set[TopicPartition]:
        """The partitions this member currently owns (may change at any poll)."""

    @abstractmethod
    def lag(self) -> dict[str, int]:
        """Records not yet consumed by this member, per topic, over its partitions."""

    @abstractmethod
    def close(self) -> None:
        """Leave the group; uncommitted records go to whoever takes the partitions."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(ABC):
    """A transport: producers, consumers and topic administration."""

    @abstractmethod
    def producer(self) -> Producer: ...

    @abstractmethod
    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        """Join `group` and read `topics`. A group with no committed offset starts at
        the earliest record."""

    @abstractmethod
    def create_topics(self, topics: Mapping[str, int]) -> None:
        """Create topics with the given partition counts; existing ones are left alone."""

    @abstractmethod
    def topics(self) -> dict[str, int]:
        """Every topic and its partition count."""

    @abstractmethod
    def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition, the offset the next published record will get."""

    @abstractmethod
    def committed(self, topic: str, group: str) -> dict[int, int | None]:
        """Per partition, the group's committed offset (None if never committed)."""

    @abstractmethod
    def reset_offsets(
        self,
        topic: str,
        group: str,
        *,
        to_offset: int | None = None,
        to_time: datetime | None = None,
    ) -> dict[int, int]:
        """Move the group's committed offset on every partition of `topic` (replay).

        `to_offset` applies to each partition (clamped to what exists); `to_time` picks
        per partition the first record at or after that time. The group should have no
        active members (as `kafka-consumer-groups --reset-offsets` requires). Returns the
        new offset per partition."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
