"""The Kafka producer's partitioner: the same partition as kafka-python's default."""

from __future__ import annotations

import os
import random
from typing import Any

from kafka.partitioner.default import DefaultPartitioner
from kafka.partitioner.default import murmur2 as kafka_murmur2

from pipeline import _native
from pipeline.bus.kafka import FastPartitioner

murmur2 = _native.murmur2


class Cluster:
    """The part of kafka-python's cluster metadata a partitioner reads."""

    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self.partitions = partitions

    def topics(self) -> set[str]:
        return set(self.partitions)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)  # None for a topic without metadata

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions[topic]


def test_murmur2_is_kafkas() -> None:
    rng = random.Random(11)
    keys = [os.urandom(n) for n in range(40) for _ in range(50)]
    keys += [f"district-weibo:{rng.getrandbits(96):024x}".encode() for _ in range(500)]
    keys += ["城市管理".encode(), b"urban-mgmt", b""]
    assert [murmur2(k) for k in keys] == [kafka_murmur2(k) for k in keys]


def test_keyed_records_go_where_the_default_partitioner_sends_them() -> None:
    cluster = Cluster({"posts.classified": {0, 1, 2, 3, 4, 5}, "alerts": {0, 1, 2}})
    fast, default = FastPartitioner(), DefaultPartitioner()
    for topic in ("posts.classified", "alerts"):
        for i in range(300):
            key = f"key-{i}".encode()
            args: tuple[Any, ...] = (topic, key, key, b"v", b"v", cluster)
            assert fast.partition(*args) == default.partition(*args)
    assert fast.partition("alerts", None, None, b"v", b"v", cluster) in {0, 1, 2}


def test_a_topic_without_metadata_is_the_defaults_error() -> None:
    import pytest

    cluster = Cluster({"alerts": {0, 1, 2}})
    for partitioner in (FastPartitioner(), DefaultPartitioner()):
        with pytest.raises(ValueError, match="not found"):
            partitioner.partition("unknown", b"k", b"k", b"v", b"v", cluster)


def test_murmur2_refuses_text() -> None:
    import pytest

    with pytest.raises(TypeError):
        murmur2("key")  # type: ignore[arg-type]
