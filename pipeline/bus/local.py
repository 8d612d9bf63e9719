"""The embedded `local` transport: a durable, append-only log in one SQLite file.

It gives the product a bus with no server to run, with the same semantics as Kafka
(see `pipeline.bus.base`), so that stages run unchanged on either transport:

- `records` is the log: one row per record, addressed by (topic, partition, offset).
  `partitions` keeps per partition the earliest retained offset and the next offset to
  hand out; a producer batch appends its rows and moves `next_offset` in ONE
  `BEGIN IMMEDIATE` transaction, so offsets are dense and never reused, even across
  processes, and retention (which only deletes a prefix) never leaves holes in the middle.
- Consumer groups live in `members` (who is in the group, last heartbeat), `owners`
  (which member currently reads which partition) and `offsets` (committed offsets).
  Partitions are assigned deterministically over the live members, recomputed at every
  poll. A partition only changes hands through `owners`: the current owner gives it up at
  its next poll (by then it has committed what it processed, in the usual
  poll → process → commit loop), and only then may the new owner take it, starting from
  the committed offset. That is the local analogue of Kafka's rebalance, and it is why
  two consumers that commit normally never both get the same record. A member whose
  heartbeat is older than its session timeout is expired by the other members and its
  partitions are taken over (its uncommitted records are delivered again).

Several processes may use one file at once: writes take the write lock up front
(`BEGIN IMMEDIATE`, so a transaction never has to upgrade a read lock and deadlock),
wait on a busy timeout, and are retried when SQLite still reports the database busy.
Reads need no lock in WAL mode, so consumers never block producers.

Durability: `synchronous=FULL`. In WAL mode NORMAL survives a process crash but may lose
the last committed transactions on power loss or an OS crash; FULL fsyncs the WAL on every
commit, so once `flush` returns the batch is on disk, which is what the `Producer.flush`
contract promises (and a crawler may already have marked those URLs as seen). Producers
write whole batches per transaction and consumers throttle heartbeat writes, so the fsync
is paid rarely (measured here: about 0.2 ms per commit; 60-90k 1 KB records/s published
in batches, ~200k/s consumed). Pass `synchronous="NORMAL"` to trade that for speed on slow disks.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

from pipeline.bus.base import (
    Bus,
    BusError,
    Consumer,
    Headers,
    Producer,
    Record,
    TopicPartition,
    as_bytes,
    check_topic,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = 1
FLUSH_RECORDS = 1000  # a producer writes its buffer once it holds this many records...
FLUSH_BYTES = 8 * 1024 * 1024  # ...or this many value bytes
BUSY_TIMEOUT_MS = 5000  # SQLite's own wait for the write lock, per attempt
WRITE_DEADLINE_S = 60.0  # give up (BusError) when the write lock stays taken this long
IDLE_SLEEP_MIN_S = 0.005  # poll() backs off from this...
IDLE_SLEEP_MAX_S = 0.04  # ...to this while nothing arrives, which bounds the latency
RETENTION_CHUNK = 20_000  # rows deleted per transaction, so writers are never held long

# Column names avoid `offset` and `partition`, which are SQL keywords.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS topics (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        partitions INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS partitions (
        topic_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        start_offset INTEGER NOT NULL DEFAULT 0,  -- earliest retained record
        next_offset INTEGER NOT NULL DEFAULT 0,   -- what the next record gets (end offset)
        PRIMARY KEY (topic_id, part)
    ) WITHOUT ROWID""",
    # A rowid table plus a unique index appends ~3x faster than a WITHOUT ROWID table
    # keyed by position when values are ~1 KB (rows stay out of the index b-tree).
    """CREATE TABLE IF NOT EXISTS records (
        id INTEGER PRIMARY KEY,
        topic_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        off INTEGER NOT NULL,
        key BLOB,
        value BLOB NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        headers TEXT  -- JSON [[name, base64 value], ...]; NULL when there are none
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS records_position ON records (topic_id, part, off)",
    """CREATE TABLE IF NOT EXISTS members (
        group_name TEXT NOT NULL,
        member_id TEXT NOT NULL,
        topics TEXT NOT NULL,  -- JSON list of subscribed topic names
        session_ms INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL,
        PRIMARY KEY (group_name, member_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS owners (
        group_name TEXT NOT NULL,
        topic_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        member_id TEXT NOT NULL,
        PRIMARY KEY (group_name, topic_id, part)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS offsets (
        group_name TEXT NOT NULL,
        topic_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        committed INTEGER NOT NULL,
        PRIMARY KEY (group_name, topic_id, part)
    ) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


class _Topic(NamedTuple):
    id: int
    name: str
    partitions: int


_Slot = tuple[int, int]  # (topic id, partition): how partitions are addressed inside


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _encode_headers(headers: Headers) -> str | None:
    if not headers:
        return None
    return json.dumps(
        [
            [name, base64.b64encode(as_bytes(value, "header value")).decode("ascii")]
            for name, value in headers
        ]
    )


def _decode_headers(text: str | None) -> tuple[tuple[str, bytes], ...]:
    if not text:
        return ()
    return tuple((name, base64.b64decode(value)) for name, value in json.loads(text))


def _retrying(conn: sqlite3.Connection, fn: Callable[[], T], deadline_s: float) -> T:
    """Run `fn` again while SQLite says the database is busy (beyond its busy timeout,
    e.g. during WAL recovery by another process), until `deadline_s` have passed."""
    deadline = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            if not _is_busy(exc):
                raise BusError(f"local bus: {exc}") from exc
            if time.monotonic() >= deadline:
                raise BusError(f"local bus: database stayed locked for {deadline_s:.0f}s") from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.2)


def _write(
    conn: sqlite3.Connection,
    fn: Callable[[sqlite3.Connection], T],
    deadline_s: float = WRITE_DEADLINE_S,
) -> T:
    """Run `fn` in one `BEGIN IMMEDIATE` transaction, retried whole while the database
    is busy. `fn` must not change Python state the caller keeps: on a retry it runs
    again, and on failure the caller's state must still match the database."""

    def attempt() -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        return result

    return _retrying(conn, attempt, deadline_s)


def _read(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> list[tuple]:
    return _retrying(conn, lambda: conn.execute(sql, params).fetchall(), WRITE_DEADLINE_S)


class LocalBus(Bus):
    """The SQLite-file bus. One instance per process (open a new one after `fork`).

    `retention_hours`: records older than this are deleted (checked on producer flush,
    at most every `retention_interval` seconds across all processes). `default_partitions`:
    partition count of topics created by publishing to them. `session_timeout`: a consumer
    that has not heartbeated for this long is expired and its partitions reassigned.
    `max_poll_interval`: a consumer that has not polled for this long stops heartbeating
    (it is considered stuck), so its partitions move on as with Kafka's setting."""

    def __init__(
        self,
        path: Path | str,
        retention_hours: float = 168.0,
        *,
        default_partitions: int = 6,
        session_timeout: float = 10.0,
        max_poll_interval: float = 300.0,
        retention_interval: float = 60.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        if retention_hours <= 0:
            raise ValueError("retention_hours must be positive")
        if default_partitions < 1:
            raise ValueError("default_partitions must be at least 1")
        if session_timeout <= 0 or max_poll_interval <= 0:
            raise ValueError("session_timeout and max_poll_interval must be positive")
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        self.path = Path(path)
        self.retention_hours = retention_hours
        self.default_partitions = default_partitions
        self.session_timeout = session_timeout
        self.max_poll_interval = max_poll_interval
        self.retention_interval = retention_interval
        self.synchronous = synchronous
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._topic_cache: dict[str, _Topic] = {}
        self._children: weakref.WeakSet[LocalProducer | LocalConsumer] = weakref.WeakSet()
        self._next_retention_check = 0.0
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._connect()
        _write(self._conn, self._create_schema)

    # -- plumbing shared with producers and consumers -------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A connection of its own for each producer and consumer: SQLite serialises
        use of one connection, and each keeps its own transaction state."""
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = _retrying(
                conn,
                lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0],
                WRITE_DEADLINE_S,
            )
            if str(mode).lower() != "wal":
                raise BusError(f"local bus: cannot put {self.path} in WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            # After a checkpoint, cut the WAL back to this size instead of keeping its peak.
            conn.execute("PRAGMA journal_size_limit = 67108864")
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise BusError(f"local bus file has schema {version}, newer than this code")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_open(self) -> None:
        if self._closed:
            raise BusError("local bus is closed")
        if os.getpid() != self._pid:
            raise BusError("LocalBus was opened in another process; open a new one after fork")

    def _remember(self, topics: Iterable[_Topic]) -> None:
        """Cache topics known to be committed (a topic never changes once created)."""
        with self._lock:
            for topic in topics:
                self._topic_cache[topic.name] = topic

    def _find_topic(self, conn: sqlite3.Connection, name: str) -> _Topic | None:
        """The topic, from the cache or the database (outside any transaction)."""
        cached = self._topic_cache.get(name)
        if cached is not None:
            return cached
        rows = _read(conn, "SELECT id, partitions FROM topics WHERE name = ?", (name,))
        if not rows:
            return None
        topic = _Topic(rows[0][0], name, rows[0][1])
        self._remember([topic])
        return topic

    @staticmethod
    def _topic_in_txn(
        conn: sqlite3.Connection, name: str, create_with: int | None
    ) -> _Topic | None:
        """Look a topic up inside a write transaction, creating it if `create_with` is a
        partition count. The result may be uncommitted: cache it only after COMMIT."""
        row = conn.execute("SELECT id, partitions FROM topics WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return _Topic(row[0], name, row[1])
        if create_with is None:
            return None
        topic_id = conn.execute(
            "INSERT INTO topics (name, partitions) VALUES (?, ?)", (name, create_with)
        ).lastrowid
        assert topic_id is not None
        conn.executemany(
            "INSERT INTO partitions (topic_id, part) VALUES (?, ?)",
            [(topic_id, p) for p in range(create_with)],
        )
        return _Topic(topic_id, name, create_with)

    def _require_topic(self, name: str) -> _Topic:
        topic = self._find_topic(self._conn, name)
        if topic is None:
            raise BusError(f"unknown topic {name!r}")
        return topic

    def _maybe_apply_retention(self, conn: sqlite3.Connection) -> None:
        """Called after producer flushes: apply retention at most every
        `retention_interval` s per process, and (through a marker row) across processes."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_retention_check:
                return
            self._next_retention_check = now + self.retention_interval
        interval_ms = int(self.retention_interval * 1000)

        def claim(c: sqlite3.Connection) -> bool:
            row = c.execute("SELECT value FROM meta WHERE name = 'retention_ms'").fetchone()
            now_ms = _now_ms()
            if row is not None and now_ms - row[0] < interval_ms:
                return False
            c.execute(
                "INSERT INTO meta (name, value) VALUES ('retention_ms', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (now_ms,),
            )
            return True

        if _write(conn, claim):
            self._apply_retention(conn)

    def _apply_retention(self, conn: sqlite3.Connection) -> int:
        cutoff_ms = _now_ms() - int(self.retention_hours * 3_600_000)
        deleted = 0
        for topic_id, part, start, end in _read(
            conn, "SELECT topic_id, part, start_offset, next_offset FROM partitions"
        ):
            if start >= end:
                continue
            # Walk the partition in offset order up to the first record still young enough:
            # the cost is the number of expired records, not the size of the log. Retention
            # removes a prefix, like Kafka deleting its oldest segments.
            row = _read(
                conn,
                "SELECT off FROM records WHERE topic_id = ? AND part = ? AND off >= ? "
                "AND timestamp_ms >= ? ORDER BY off LIMIT 1",
                (topic_id, part, start, cutoff_ms),
            )
            cut = row[0][0] if row else end
            while start < cut:
                upto = min(cut, start + RETENTION_CHUNK)

                def delete(
                    c: sqlite3.Connection, t: int = topic_id, p: int = part, upto: int = upto
                ) -> int:
                    n = c.execute(
                        "DELETE FROM records WHERE topic_id = ? AND part = ? AND off < ?",
                        (t, p, upto),
                    ).rowcount
                    c.execute(
                        "UPDATE partitions SET start_offset = max(start_offset, ?) "
                        "WHERE topic_id = ? AND part = ?",
                        (upto, t, p),
                    )
                    return n

                deleted += _write(conn, delete)
                start = upto
        if deleted:
            log.info(
                "local bus retention deleted %d records older than %s h",
                deleted,
                self.retention_hours,
            )
        return deleted

    # -- Bus -------------------------------------------------------------------------

    def producer(self) -> LocalProducer:
        with self._lock:
            self._check_open()
            producer = LocalProducer(self)
            self._children.add(producer)
            return producer

    def consumer(self, topics: Sequence[str], group: str) -> LocalConsumer:
        with self._lock:
            self._check_open()
            consumer = LocalConsumer(self, topics, group)
            self._children.add(consumer)
            return consumer

    def create_topics(self, topics: Mapping[str, int]) -> None:
        for name, partitions in topics.items():
            check_topic(name)
            if not isinstance(partitions, int) or partitions < 1:
                raise ValueError(f"topic {name!r}: partition count must be a positive int")

        def create(conn: sqlite3.Connection) -> list[_Topic]:
            return [
                t
                for name, n in topics.items()
                if (t := self._topic_in_txn(conn, name, n)) is not None
            ]

        with self._lock:
            self._check_open()
            self._remember(_write(self._conn, create))

    def topics(self) -> dict[str, int]:
        with self._lock:
            self._check_open()
            return dict(_read(self._conn, "SELECT name, partitions FROM topics ORDER BY name"))

    def end_offsets(self, topic: str) -> dict[int, int]:
        with self._lock:
            self._check_open()
            t = self._require_topic(topic)
            return dict(
                _read(
                    self._conn,
                    "SELECT part, next_offset FROM partitions WHERE topic_id = ? ORDER BY part",
                    (t.id,),
                )
            )

    def committed(self, topic: str, group: str) -> dict[int, int | None]:
        with self._lock:
            self._check_open()
            t = self._require_topic(topic)
            found = dict(
                _read(
                    self._conn,
                    "SELECT part, committed FROM offsets WHERE group_name = ? AND topic_id = ?",
                    (group, t.id),
                )
            )
            return {p: found.get(p) for p in range(t.partitions)}

    def reset_offsets(
        self,
        topic: str,
        group: str,
        *,
        to_offset: int | None = None,
        to_time: datetime | None = None,
    ) -> dict[int, int]:
        """See `Bus.reset_offsets`. Refuses (BusError) while a live member of the group
        reads `topic`: it would go on from its own position and overwrite the reset.
        A naive `to_time` is local time, as `datetime.timestamp` takes it."""
        if (to_offset is None) == (to_time is None):
            raise ValueError("give exactly one of to_offset and to_time")
        time_ms = None if to_time is None else int(to_time.timestamp() * 1000)

        def reset(conn: sqlite3.Connection) -> dict[int, int]:
            t = self._topic_in_txn(conn, topic, None)
            if t is None:
                raise BusError(f"unknown topic {topic!r}")
            now_ms = _now_ms()
            for member_id, topics, session_ms, heartbeat_ms in conn.execute(
                "SELECT member_id, topics, session_ms, heartbeat_ms FROM members "
                "WHERE group_name = ?",
                (group,),
            ).fetchall():
                if heartbeat_ms + session_ms >= now_ms and topic in json.loads(topics):
                    raise BusError(
                        f"group {group!r} has an active member ({member_id}) on {topic!r}; "
                        "stop its consumers before resetting offsets"
                    )
            result: dict[int, int] = {}
            for part, start, end in conn.execute(
                "SELECT part, start_offset, next_offset FROM partitions WHERE topic_id = ? "
                "ORDER BY part",
                (t.id,),
            ).fetchall():
                if to_offset is not None:
                    new = min(max(to_offset, start), end)
                else:
                    row = conn.execute(
                        "SELECT off FROM records WHERE topic_id = ? AND part = ? "
                        "AND timestamp_ms >= ? ORDER BY off LIMIT 1",
                        (t.id, part, time_ms),
                    ).fetchone()
                    new = row[0] if row else end
                conn.execute(
                    "INSERT INTO offsets (group_name, topic_id, part, committed) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (group_name, topic_id, part) "
                    "DO UPDATE SET committed = excluded.committed",
                    (group, t.id, part, new),
                )
                result[part] = new
            return result

        with self._lock:
            self._check_open()
            return _write(self._conn, reset)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            children = list(self._children)
        for child in children:
            try:
                child.close()
            except BusError as exc:  # keep closing the rest
                log.warning("local bus: closing %r failed: %s", child, exc)
        if os.getpid() == self._pid:
            self._conn.close()

    # -- local-only administration ----------------------------------------------------

    def apply_retention(self) -> int:
        """Delete records older than `retention_hours` now; returns how many."""
        with self._lock:
            self._check_open()
            return self._apply_retention(self._conn)

    def describe_group(self, group: str) -> dict[str, set[TopicPartition]]:
        """Live members of `group` and the partitions each currently owns (like
        `kafka-consumer-groups --describe`)."""
        with self._lock:
            self._check_open()
            now_ms = _now_ms()
            members: dict[str, set[TopicPartition]] = {
                member_id: set()
                for member_id, session_ms, heartbeat_ms in _read(
                    self._conn,
                    "SELECT member_id, session_ms, heartbeat_ms FROM members WHERE group_name = ?",
                    (group,),
                )
                if heartbeat_ms + session_ms >= now_ms
            }
            for name, part, member_id in _read(
                self._conn,
                "SELECT t.name, o.part, o.member_id FROM owners o "
                "JOIN topics t ON t.id = o.topic_id WHERE o.group_name = ?",
                (group,),
            ):
                if member_id in members:
                    members[member_id].add(TopicPartition(name, part))
            return members


@dataclass(slots=True)
class _Pending:
    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: str | None


class LocalProducer(Producer):
    """Buffers records in memory; `flush` appends the whole buffer in one transaction."""

    def __init__(self, bus: LocalBus) -> None:
        self._bus = bus
        self._conn = bus._connect()
        self._lock = threading.RLock()
        self._buffer: list[_Pending] = []
        self._buffer_bytes = 0
        self._round_robin: dict[str, int] = {}
        self._closed = False

    def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()
    ) -> None:
        check_topic(topic)
        pending = _Pending(
            topic,
            None if key is None else as_bytes(key, "key"),
            as_bytes(value, "value"),
            _now_ms(),
            _encode_headers(headers),
        )
        with self._lock:
            self._check_open()
            self._buffer.append(pending)
            self._buffer_bytes += len(pending.value)
            if len(self._buffer) >= FLUSH_RECORDS or self._buffer_bytes >= FLUSH_BYTES:
                self.flush()

    def flush(self, timeout: float | None = None) -> None:
        """Write the buffer in one transaction; on failure (BusError) it stays buffered."""
        with self._lock:
            self._check_open()
            self._write_buffer(WRITE_DEADLINE_S if timeout is None else max(timeout, 0.0))
            self._bus._maybe_apply_retention(self._conn)

    def _write_buffer(self, deadline_s: float) -> None:
        if not self._buffer:
            return
        batch = self._buffer
        topics = _write(self._conn, lambda conn: self._append(conn, batch), deadline_s)
        self._bus._remember(topics)
        self._buffer = []
        self._buffer_bytes = 0

    def _partition(self, topic: str, key: bytes | None, partitions: int) -> int:
        if key is not None:
            # crc32 is stable across processes and Python versions (unlike hash()).
            return zlib.crc32(key) % partitions
        # No key: round-robin, from a random start so that producers spread out.
        n = self._round_robin.get(topic)
        if n is None:
            n = random.randrange(partitions)
        self._round_robin[topic] = n + 1
        return n % partitions

    def _append(self, conn: sqlite3.Connection, batch: list[_Pending]) -> list[_Topic]:
        by_topic: dict[str, list[_Pending]] = {}
        for pending in batch:
            by_topic.setdefault(pending.topic, []).append(pending)
        rows: list[tuple[object, ...]] = []
        moved: list[tuple[int, int, int]] = []
        topics: list[_Topic] = []
        for name, items in by_topic.items():
            topic = self._bus._topic_in_txn(conn, name, self._bus.default_partitions)
            assert topic is not None
            topics.append(topic)
            next_offset = dict(
                conn.execute(
                    "SELECT part, next_offset FROM partitions WHERE topic_id = ?", (topic.id,)
                ).fetchall()
            )
            before = dict(next_offset)
            for item in items:
                part = self._partition(name, item.key, topic.partitions)
                off = next_offset[part]
                next_offset[part] = off + 1
                rows.append(
                    (topic.id, part, off, item.key, item.value, item.timestamp_ms, item.headers)
                )
            moved.extend((n, topic.id, p) for p, n in next_offset.items() if n != before[p])
        conn.executemany(
            "INSERT INTO records (topic_id, part, off, key, value, timestamp_ms, headers) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "UPDATE partitions SET next_offset = ? WHERE topic_id = ? AND part = ?", moved
        )
        return topics

    def _check_open(self) -> None:
        if self._closed:
            raise BusError("producer is closed")
        self._bus._check_open()

    def close(self) -> None:
        """Flush what is buffered, then release the connection. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                if os.getpid() == self._bus._pid:
                    self._write_buffer(WRITE_DEADLINE_S)
            finally:
                self._closed = True
                if os.getpid() == self._bus._pid:
                    self._conn.close()


@dataclass(slots=True)
class _Sync:
    """What reconciling with the group decided: partitions owned afterwards, start
    offsets of the newly claimed ones, and whether the database has to be written."""

    needs_write: bool
    owned: set[_Slot] = field(default_factory=set)
    claimed: dict[_Slot, int] = field(default_factory=dict)
    rejoined: bool = False


class LocalConsumer(Consumer):
    """A member of one consumer group. Not for use by several threads at once."""

    def __init__(self, bus: LocalBus, topics: Sequence[str], group: str) -> None:
        if isinstance(topics, str):
            raise TypeError("topics must be a sequence of topic names, not one string")
        if not topics:
            raise ValueError("subscribe to at least one topic")
        for name in topics:
            check_topic(name)
        if not group:
            raise ValueError("group must not be empty")
        self._bus = bus
        self._group = group
        self._topics = sorted(set(topics))
        self._member_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._session_ms = int(bus.session_timeout * 1000)
        # Heartbeat writes are throttled: a few per session timeout keep the member alive
        # without turning every poll into a write transaction (and an fsync).
        self._heartbeat_every = min(1.0, bus.session_timeout / 4)
        self._conn = bus._connect()
        self._lock = threading.RLock()
        self._meta: dict[str, _Topic] = {}  # subscribed topics that exist
        self._names: dict[int, str] = {}
        self._positions: dict[_Slot, int] = {}  # owned partition -> next offset to return
        self._returned: dict[_Slot, int] = {}  # highest offset + 1 returned, to commit()
        self._rotation = 0
        self._last_poll = time.monotonic()
        self._last_heartbeat = 0.0
        self._closed = False
        _write(self._conn, self._heartbeat_txn(insert=True))
        self._last_heartbeat = time.monotonic()
        self._stop = threading.Event()
        # A member must stay alive while the application processes a batch between polls,
        # as Kafka's background heartbeat thread does.
        self._heartbeater = threading.Thread(
            target=self._heartbeat_loop, name=f"local-bus-heartbeat-{group}", daemon=True
        )
        self._heartbeater.start()

    # -- group membership --------------------------------------------------------------

    def _heartbeat_txn(self, insert: bool) -> Callable[[sqlite3.Connection], bool]:
        def txn(conn: sqlite3.Connection) -> bool:
            now_ms = _now_ms()
            if insert:
                conn.execute(
                    "INSERT INTO members (group_name, member_id, topics, session_ms, "
                    "heartbeat_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_name, member_id) "
                    "DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
                    (
                        self._group,
                        self._member_id,
                        json.dumps(self._topics),
                        self._session_ms,
                        now_ms,
                    ),
                )
                return True
            return (
                conn.execute(
                    "UPDATE members SET heartbeat_ms = ? WHERE group_name = ? AND member_id = ?",
                    (now_ms, self._group, self._member_id),
                ).rowcount
                > 0
            )

        return txn

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self._heartbeat_every / 2):
            with self._lock:
                if self._closed:
                    return
                now = time.monotonic()
                if now - self._last_poll > self._bus.max_poll_interval:
                    continue  # stuck application: let the member expire
                if now - self._last_heartbeat < self._heartbeat_every:
                    continue
                try:
                    # Only refresh an existing row: an expired member rejoins at poll time,
                    # where it also drops the positions it no longer owns.
                    _write(self._conn, self._heartbeat_txn(insert=False), self._heartbeat_every)
                    self._last_heartbeat = now
                except BusError as exc:
                    log.warning("local bus heartbeat of %s failed: %s", self._member_id, exc)

    def _refresh_topics(self) -> None:
        for name in self._topics:
            if name not in self._meta:
                topic = self._bus._find_topic(self._conn, name)
                if topic is not None:
                    self._meta[name] = topic
                    self._names[topic.id] = name

    def _desired(self, live: Mapping[str, Sequence[str]]) -> set[_Slot]:
        """The partitions this member should own, given the live members and their
        subscriptions: per topic, round-robin over the sorted subscribers, starting at a
        per-topic point so that single-partition topics do not all land on one member."""
        mine: set[_Slot] = set()
        for name, topic in self._meta.items():
            subscribers = sorted(m for m, subscribed in live.items() if name in subscribed)
            start = zlib.crc32(name.encode()) % len(subscribers)
            for part in range(topic.partitions):
                if subscribers[(start + part) % len(subscribers)] == self._member_id:
                    mine.add((topic.id, part))
        return mine

    def _reconcile(self, conn: sqlite3.Connection, apply: bool) -> _Sync:
        """Compare the group's state with what this member should own; with `apply`
        (inside a write transaction) also heartbeat, expire dead members, give up
        partitions that belong to others and claim free ones."""
        now_ms = _now_ms()
        live: dict[str, list[str]] = {}
        expired: list[str] = []
        joined = False
        for member_id, topics, session_ms, heartbeat_ms in conn.execute(
            "SELECT member_id, topics, session_ms, heartbeat_ms FROM members WHERE group_name = ?",
            (self._group,),
        ).fetchall():
            if member_id == self._member_id:
                joined = True
            elif heartbeat_ms + session_ms < now_ms:
                expired.append(member_id)
            else:
                live[member_id] = json.loads(topics)
        live[self._member_id] = self._topics
        owners = {
            (topic_id, part): member_id
            for topic_id, part, member_id in conn.execute(
                "SELECT topic_id, part, member_id FROM owners WHERE group_name = ?",
                (self._group,),
            ).fetchall()
        }
        desired = self._desired(live)
        mine = {slot for slot, member_id in owners.items() if member_id == self._member_id}
        release = mine - desired
        claim = {slot for slot in desired if owners.get(slot) not in live}
        heartbeat_due = time.monotonic() - self._last_heartbeat >= self._heartbeat_every
        needs_write = bool(expired or release or claim or not joined or heartbeat_due)
        if not apply:
            return _Sync(needs_write, owned=mine)
        self._heartbeat_txn(insert=True)(conn)
        for member_id in expired:
            conn.execute(
                "DELETE FROM members WHERE group_name = ? AND member_id = ?",
                (self._group, member_id),
            )
            conn.execute(
                "DELETE FROM owners WHERE group_name = ? AND member_id = ?",
                (self._group, member_id),
            )
        conn.executemany(
            "DELETE FROM owners WHERE group_name = ? AND topic_id = ? AND part = ?",
            [(self._group, t, p) for t, p in release],
        )
        conn.executemany(
            "INSERT INTO owners (group_name, topic_id, part, member_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (group_name, topic_id, part) DO UPDATE SET member_id = "
            "excluded.member_id",
            [(self._group, t, p, self._member_id) for t, p in claim],
        )
        claimed: dict[_Slot, int] = {}
        for t, p in claim:
            # A newly gained partition starts at the group's committed offset (or the
            # earliest retained record), never at a position from an earlier ownership.
            row = conn.execute(
                "SELECT coalesce(o.committed, s.start_offset) FROM partitions s "
                "LEFT JOIN offsets o ON o.group_name = ? AND o.topic_id = s.topic_id "
                "AND o.part = s.part WHERE s.topic_id = ? AND s.part = ?",
                (self._group, t, p),
            ).fetchone()
            claimed[(t, p)] = row[0]
        return _Sync(True, owned=(mine - release) | claim, claimed=claimed, rejoined=not joined)

    def _sync(self) -> None:
        self._refresh_topics()
        plan = _retrying(
            self._conn, lambda: self._reconcile(self._conn, apply=False), WRITE_DEADLINE_S
        )
        if plan.needs_write:
            plan = _write(self._conn, lambda conn: self._reconcile(conn, apply=True))
            self._last_heartbeat = time.monotonic()
            if plan.rejoined:
                log.warning(
                    "local bus: member %s of %r had expired and rejoined",
                    self._member_id,
                    self._group,
                )
        for slot in list(self._positions):
            if slot not in plan.owned:
                del self._positions[slot]
                self._returned.pop(slot, None)  # uncommitted: the new owner re-reads them
        for slot, start in plan.claimed.items():
            self._positions[slot] = start
            self._returned.pop(slot, None)

    # -- Consumer ----------------------------------------------------------------------

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        deadline = time.monotonic() + max(timeout, 0.0)
        delay = IDLE_SLEEP_MIN_S
        while True:
            with self._lock:
                self._check_open()
                self._last_poll = time.monotonic()
                self._sync()
                records = self._fetch(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, IDLE_SLEEP_MAX_S)

    def _bounds(self) -> dict[_Slot, tuple[int, int]]:
        """(earliest retained, end) of every partition of the subscribed topics."""
        ids = [t.id for t in self._meta.values()]
        if not ids:
            return {}
        rows = _read(
            self._conn,
            "SELECT topic_id, part, start_offset, next_offset FROM partitions "
            f"WHERE topic_id IN ({','.join('?' * len(ids))})",
            ids,
        )
        return {(t, p): (start, end) for t, p, start, end in rows}

    def _fetch(self, max_records: int) -> list[Record]:
        if not self._positions:
            return []
        bounds = self._bounds()
        ready = [s for s in sorted(self._positions) if bounds[s][1] > self._positions[s]]
        if not ready:
            return []
        # Rotate the starting partition and share `max_records` out evenly, so one busy
        # partition cannot starve the others.
        self._rotation = (self._rotation + 1) % len(ready)
        ready = ready[self._rotation :] + ready[: self._rotation]
        records: list[Record] = []
        for i, slot in enumerate(ready):
            share = math.ceil((max_records - len(records)) / (len(ready) - i))
            if share <= 0:
                break
            topic_id, part = slot
            rows = _read(
                self._conn,
                "SELECT off, key, value, timestamp_ms, headers FROM records "
                "WHERE topic_id = ? AND part = ? AND off >= ? ORDER BY off LIMIT ?",
                (topic_id, part, self._positions[slot], share),
            )
            if not rows:
                continue
            name = self._names[topic_id]
            records.extend(
                Record(name, part, off, key, value, ts, _decode_headers(headers))
                for off, key, value, ts, headers in rows
            )
            self._positions[slot] = self._returned[slot] = rows[-1][0] + 1
        return records

    def commit(self, records: Iterable[Record] | None = None) -> None:
        """Store offsets of partitions this member still owns. Offsets of partitions it
        has lost (after a rebalance or its own expiry) are dropped with a warning: the new
        owner reads them again, which at-least-once allows (Kafka raises instead)."""
        with self._lock:
            self._check_open()
            if records is None:
                targets = dict(self._returned)
            else:
                targets = {}
                for record in records:
                    topic = self._meta.get(record.topic)
                    if topic is None:
                        raise BusError(f"record of {record.topic!r}, not a subscribed topic")
                    slot = (topic.id, record.partition)
                    targets[slot] = max(targets.get(slot, 0), record.offset + 1)
            if not targets:
                return

            def store(conn: sqlite3.Connection) -> set[_Slot]:
                owned = {
                    (t, p)
                    for t, p in conn.execute(
                        "SELECT topic_id, part FROM owners WHERE group_name = ? AND member_id = ?",
                        (self._group, self._member_id),
                    ).fetchall()
                }
                conn.executemany(
                    "INSERT INTO offsets (group_name, topic_id, part, committed) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (group_name, topic_id, part) "
                    "DO UPDATE SET committed = excluded.committed",
                    [
                        (self._group, t, p, off)
                        for (t, p), off in targets.items()
                        if (t, p) in owned
                    ],
                )
                return set(targets) - owned

            lost = _write(self._conn, store)
            if lost:
                log.warning(
                    "local bus: %s no longer owns %s; their offsets were not committed",
                    self._member_id,
                    sorted(TopicPartition(self._names[t], p) for t, p in lost),
                )
            for slot, off in targets.items():
                if self._returned.get(slot, 0) <= off:
                    self._returned.pop(slot, None)

    def assignment(self) -> set[TopicPartition]:
        with self._lock:
            return {TopicPartition(self._names[t], p) for t, p in self._positions}

    def lag(self) -> dict[str, int]:
        with self._lock:
            self._check_open()
            result = dict.fromkeys(self._topics, 0)
            bounds = self._bounds()
            for slot, position in self._positions.items():
                start, end = bounds[slot]
                result[self._names[slot[0]]] += max(0, end - max(position, start))
            return result

    def _check_open(self) -> None:
        if self._closed:
            raise BusError("consumer is closed")
        self._bus._check_open()

    def close(self) -> None:
        """Leave the group (its partitions go to the others at once). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
        if self._heartbeater is not threading.current_thread():
            self._heartbeater.join()
        if os.getpid() != self._bus._pid:
            return

        def leave(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM owners WHERE group_name = ? AND member_id = ?",
                (self._group, self._member_id),
            )
            conn.execute(
                "DELETE FROM members WHERE group_name = ? AND member_id = ?",
                (self._group, self._member_id),
            )

        try:
            _write(self._conn, leave)
        except BusError as exc:  # it will expire after the session timeout instead
            log.warning("local bus: %s could not leave %r: %s", self._member_id, self._group, exc)
        finally:
            self._conn.close()
            self._positions.clear()
            self._returned.clear()
