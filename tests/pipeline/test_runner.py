"""The stage runner: order of work, poison messages to the DLQ, retries, clean stop."""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pipeline import metrics
from pipeline.bus import Record
from pipeline.bus.local import LocalBus
from pipeline.messages import Post
from pipeline.runner import ConsumerStage, Item, Outgoing, Runner, StageContext, StopFlag
from pipeline.settings import load_settings

IN, OUT = "test.in", "test.out"


class EchoStage(ConsumerStage[Post]):
    """Republishes each post's text upper-cased; fails on texts it is told to fail on."""

    name = "echo"
    topics = (IN,)
    message_type = Post

    def __init__(self, ctx: StageContext, fail_on: set[str] | None = None, flaky: int = 0):
        super().__init__(ctx)
        self.fail_on = fail_on or set()
        self.flaky = flaky  # fail this many calls, then succeed
        self.handled: list[str] = []
        self.calls = 0
        self.collecting: list[bool] = []  # whether the cycle collector ran, per call

    def handle(self, items: Sequence[Item[Post]]) -> list[Outgoing]:
        self.calls += 1
        self.collecting.append(gc.isenabled())
        if self.flaky:
            self.flaky -= 1
            raise ConnectionError("database went away")
        for item in items:
            if item.message.text in self.fail_on:
                raise ValueError(f"cannot handle {item.message.text}")
        self.handled.extend(i.message.text for i in items)
        return [
            Outgoing(OUT, Post(source="echo", text=i.message.text.upper()), key=i.message.id)
            for i in items
        ]


@pytest.fixture
def bus(tmp_path: Path) -> LocalBus:
    b = LocalBus(tmp_path / "bus.sqlite3", retention_hours=24)
    b.create_topics({IN: 2, OUT: 2, f"{IN}.dlq": 1})
    yield b
    b.close()


def publish(bus: LocalBus, values: list[bytes]) -> None:
    with bus.producer() as p:
        for i, v in enumerate(values):
            p.publish(IN, v, key=str(i).encode())
        p.flush()


def read_all(bus: LocalBus, topic: str, group: str = "reader") -> list[Record]:
    out: list[Record] = []
    with bus.consumer([topic], group) as c:
        for _ in range(20):
            got = c.poll(1000, 0.2)
            if not got and out:
                break
            out.extend(got)
    return out


def run_until_drained(runner: Runner, bus: LocalBus) -> None:
    """Run the loop in a thread until the stage group has committed everything."""
    t = threading.Thread(target=runner.run)
    t.start()
    try:
        for _ in range(200):
            ends = bus.end_offsets(IN)
            committed = bus.committed(IN, runner.stage.group)
            if all((committed.get(p) or 0) >= end for p, end in ends.items()):
                break
            runner.stop.wait(0.05)
    finally:
        runner.stop.set()
        t.join(10)
    assert not t.is_alive()


def committed_total(bus: LocalBus, group: str) -> int:
    return sum(v or 0 for v in bus.committed(IN, group).values())


def post_json(text: str) -> bytes:
    return Post(source="t", text=text).to_json()


def test_processes_publishes_and_commits(bus: LocalBus, isolated_env: Path) -> None:
    stage = EchoStage(StageContext(load_settings(), bus))
    publish(bus, [post_json(t) for t in ["a", "b", "c"]])
    run_until_drained(Runner(stage, poll_timeout=0.05), bus)
    assert sorted(stage.handled) == ["a", "b", "c"]
    outs = sorted(Post.from_json(r.value).text for r in read_all(bus, OUT))
    assert outs == ["A", "B", "C"]
    assert committed_total(bus, stage.group) == 3


def test_cycle_collector_is_paused_for_each_batch_only(bus: LocalBus, isolated_env: Path) -> None:
    stage = EchoStage(StageContext(load_settings(), bus))
    publish(bus, [post_json(t) for t in ["a", "b"]])
    assert gc.isenabled()
    run_until_drained(Runner(stage, poll_timeout=0.05), bus)
    assert stage.collecting and not any(stage.collecting)
    assert gc.isenabled()


def test_poison_messages_go_to_dlq_and_the_rest_goes_on(bus: LocalBus, isolated_env: Path) -> None:
    stage = EchoStage(StageContext(load_settings(), bus), fail_on={"poison"})
    dlq_before = metrics.DLQ_MESSAGES.labels(IN)._value.get()
    poison = post_json("poison")
    publish(
        bus,
        [post_json("ok1"), b"{not json", b'{"schema": 1, "source": "x"}', poison, post_json("ok2")],
    )
    sleeps: list[float] = []
    run_until_drained(Runner(stage, poll_timeout=0.05, max_retries=2, sleep=sleeps.append), bus)
    assert sorted(stage.handled) == ["ok1", "ok2"]
    dead = read_all(bus, f"{IN}.dlq")
    assert len(dead) == 3
    reasons = {r.value: dict(r.headers)["yuqing.error"].decode() for r in dead}
    assert reasons[b"{not json"].startswith("undecodable: not JSON")
    assert "text: Field required" in reasons[b'{"schema": 1, "source": "x"}']
    assert "failed 3 times: ValueError: cannot handle poison" in reasons[poison]
    headers = dict(dead[0].headers)
    assert headers["yuqing.topic"] == IN.encode() and headers["yuqing.stage"] == b"echo"
    assert sleeps == [0.2, 0.4]  # two retries with backoff for the poison message
    assert metrics.DLQ_MESSAGES.labels(IN)._value.get() - dlq_before == 3
    assert committed_total(bus, stage.group) == 5


def test_transient_failure_is_retried_not_dead_lettered(bus: LocalBus, isolated_env: Path) -> None:
    stage = EchoStage(StageContext(load_settings(), bus), flaky=2)
    publish(bus, [post_json("x")])
    run_until_drained(Runner(stage, poll_timeout=0.05, max_retries=3, sleep=lambda s: None), bus)
    assert stage.handled == ["x"]
    assert read_all(bus, f"{IN}.dlq") == []


def test_stop_flag_finishes_the_batch_in_hand(bus: LocalBus, isolated_env: Path) -> None:
    stop = StopFlag()

    class StopsMidway(EchoStage):
        def handle(self, items: Sequence[Item[Post]]) -> list[Outgoing]:
            stop.set()  # as if SIGTERM arrived while this batch was being processed
            return super().handle(items)

    stage = StopsMidway(StageContext(load_settings(), bus))
    publish(bus, [post_json(str(i)) for i in range(10)])
    Runner(stage, poll_timeout=0.05, stop=stop, batch_size=4).run()
    # The batch in hand was processed, published and committed; nothing after it.
    assert len(stage.handled) == 4
    assert committed_total(bus, stage.group) == 4
    assert len(read_all(bus, OUT)) == 4


def test_database_outage_is_waited_out_never_dead_lettered(
    bus: LocalBus, isolated_env: Path
) -> None:
    from sqlalchemy.exc import OperationalError

    class DatabaseDown(EchoStage):
        outage = 3

        def handle(self, items: Sequence[Item[Post]]) -> list[Outgoing]:
            if self.outage:
                self.outage -= 1
                raise OperationalError("INSERT", {}, Exception("connection refused"))
            return super().handle(items)

    stage = DatabaseDown(StageContext(load_settings(), bus))
    publish(bus, [post_json("a"), post_json("b")])
    run_until_drained(Runner(stage, poll_timeout=0.05, retry_backoff=0.01, max_retries=0), bus)
    assert sorted(stage.handled) == ["a", "b"]
    assert read_all(bus, f"{IN}.dlq") == []


def test_stop_during_outage_commits_nothing(bus: LocalBus, isolated_env: Path) -> None:
    from sqlalchemy.exc import OperationalError

    stop = StopFlag()

    class AlwaysDown(EchoStage):
        def handle(self, items: Sequence[Item[Post]]) -> list[Outgoing]:
            stop.set()
            raise OperationalError("INSERT", {}, Exception("no such table: posts"))

    stage = AlwaysDown(StageContext(load_settings(), bus))
    publish(bus, [post_json("a")])
    Runner(stage, poll_timeout=0.05, stop=stop).run()
    assert committed_total(bus, stage.group) == 0
    assert read_all(bus, f"{IN}.dlq") == []


class SplitStage(EchoStage):
    """Splits a batch by the first letter of each text; `handle` of a part waits for the
    other part's (a barrier), so the batch only goes through when parts run at once."""

    def __init__(self, ctx: StageContext, **kwargs: object):
        super().__init__(ctx, **kwargs)  # type: ignore[arg-type]
        self.barrier = threading.Barrier(2, timeout=10)
        self.threads: list[str] = []

    def split(self, items: Sequence[Item[Post]], parts: int) -> list[Sequence[Item[Post]]]:
        groups: dict[str, list[Item[Post]]] = {}
        for item in items:
            groups.setdefault(item.message.text[0], []).append(item)
        return list(groups.values())

    def handle(self, items: Sequence[Item[Post]]) -> list[Outgoing]:
        self.threads.append(threading.current_thread().name)
        if len(items) > 1:  # a part, not a message retried alone
            self.barrier.wait()
        return super().handle(items)


def run_in_parts(bus: LocalBus, stage: EchoStage, **kwargs: Any) -> None:
    """ "a1", "b1", "a2", "b2" in one batch to `stage`, on two threads, until committed."""
    publish(bus, [post_json(t) for t in ["a1", "b1", "a2", "b2"]])
    run_until_drained(Runner(stage, poll_timeout=0.05, batch_size=10, threads=2, **kwargs), bus)


def test_parts_of_a_batch_are_handled_at_once_then_published_and_committed(
    bus: LocalBus, isolated_env: Path
) -> None:
    stage = SplitStage(StageContext(load_settings(), bus))
    run_in_parts(bus, stage)
    assert sorted(stage.handled) == ["a1", "a2", "b1", "b2"]
    assert len(stage.threads) == 2 and all(t.startswith("echo-part") for t in stage.threads)
    assert sorted(Post.from_json(r.value).text for r in read_all(bus, OUT)) == [
        "A1",
        "A2",
        "B1",
        "B2",
    ]
    assert committed_total(bus, stage.group) == 4


def test_a_failing_message_in_a_part_is_dead_lettered_by_the_runner(
    bus: LocalBus, isolated_env: Path
) -> None:
    """The part retries its messages alone on its thread; the dead letter is published
    from the runner's own thread (the local bus's connection belongs to it)."""
    stage = SplitStage(StageContext(load_settings(), bus), fail_on={"b2"})
    run_in_parts(bus, stage, sleep=lambda s: None)
    assert sorted(stage.handled) == ["a1", "a2", "b1"]
    dead = read_all(bus, f"{IN}.dlq")
    assert [Post.from_json(r.value).text for r in dead] == ["b2"]
    assert "cannot handle b2" in dict(dead[0].headers)["yuqing.error"].decode()
    assert committed_total(bus, stage.group) == 4


def test_stop_while_a_part_waits_out_an_outage_commits_nothing(
    bus: LocalBus, isolated_env: Path
) -> None:
    from sqlalchemy.exc import OperationalError

    stop = StopFlag()

    class BDown(SplitStage):
        def handle(self, items: Sequence[Item[Post]]) -> list[Outgoing]:
            if items[0].message.text.startswith("b"):
                self.barrier.wait()
                stop.set()
                raise OperationalError("INSERT", {}, Exception("connection refused"))
            return super().handle(items)

    stage = BDown(StageContext(load_settings(), bus))
    publish(bus, [post_json(t) for t in ["a1", "b1", "a2", "b2"]])
    Runner(stage, poll_timeout=0.05, batch_size=10, threads=2, stop=stop).run()
    # The "a" part was handled (idempotent stages store it again on the replay), but
    # the batch was neither published nor committed.
    assert sorted(stage.handled) == ["a1", "a2"]
    assert committed_total(bus, stage.group) == 0
    assert read_all(bus, OUT) == [] and read_all(bus, f"{IN}.dlq") == []


def test_a_stage_that_does_not_split_gets_its_batch_whole(
    bus: LocalBus, isolated_env: Path
) -> None:
    stage = EchoStage(StageContext(load_settings(), bus))
    run_in_parts(bus, stage)
    assert stage.calls == 1 and sorted(stage.handled) == ["a1", "a2", "b1", "b2"]
