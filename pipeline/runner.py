"""The stage runner: consume → process → produce/store → commit, in that order.

A stage is a class that turns a batch of decoded input messages into stored rows and
outgoing messages. The runner owns everything around it:

- at-least-once: offsets are committed only after the batch was stored and its output
  flushed, so a crash anywhere before the commit replays the batch; stages therefore
  write idempotently (upserts keyed by ids);
- poison messages: undecodable JSON and schema violations go straight to
  `<topic>.dlq`; when a batch fails, each message is retried alone (up to
  `stage_max_retries` times, with backoff) and one that keeps failing goes to the DLQ with
  its error, while the rest of the batch goes on;
- SIGTERM/SIGINT: the batch in hand is finished and committed, then the loop ends;
- parallel parts: a stage that can split a batch into parts touching disjoint rows
  (`ConsumerStage.split`) has them handled on `stage_threads` threads at once, each in
  its own transaction; the batch is published and committed once every part is done;
- metrics: messages by outcome, batch time, consumer lag, DLQ count.

Stages fed by a timer rather than by topics (the scheduler) derive from `PeriodicStage`:
`tick` every `interval` seconds, environment errors waited out the same way.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pipeline import collector, metrics
from pipeline.bus import Bus, BusError, Consumer, Producer, Record, open_bus
from pipeline.messages import TOPICS, Message, MessageError, dlq_topic, now_utc
from pipeline.settings import Settings

if TYPE_CHECKING:
    import typer
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

STAGE_GROUP = "yuqing.stages"
LAG_REFRESH_SECONDS = 5.0
TRANSIENT_BACKOFF_MAX = 30.0

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message a stage wants published once its batch is stored."""

    topic: str
    value: Message
    key: str | None = None


@dataclass(slots=True)
class Item(Generic[M]):
    """One decoded input message with the record it came from."""

    record: Record
    message: M


@dataclass
class StageContext:
    """What a stage gets from the process: settings, bus, database."""

    settings: Settings
    bus: Bus

    @cached_property
    def engine(self) -> Engine:
        from pipeline.storage.db import make_engine

        return make_engine(self.settings.resolved_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        from pipeline.storage.db import session_factory

        return session_factory(self.engine)


class Stage(ABC):
    """A process of the pipeline (`yuqing run NAME`). Consuming stages derive from
    `ConsumerStage`; others (crawler, scheduler, web) implement `run` themselves."""

    name: ClassVar[str]

    def __init__(self, ctx: StageContext):
        self.ctx = ctx

    @abstractmethod
    def run(self, stop: StopFlag) -> None:
        """Work until `stop` is set; finish what is in hand first."""

    def close(self) -> None:
        """Release what the stage holds (models, connections)."""

    @classmethod
    def register_commands(cls, app: typer.Typer) -> None:
        """Add the stage's own CLI commands (e.g. `classify`) to the `yuqing` app."""


class ConsumerStage(Stage, Generic[M]):
    """A stage fed by bus topics. Subclasses set `topics` and `message_type` and implement
    `handle`, which must be idempotent: a replayed batch changes nothing."""

    topics: ClassVar[tuple[str, ...]]
    message_type: ClassVar[type[Message]]

    @property
    def group(self) -> str:
        return f"yuqing-{self.name}"

    def decode(self, record: Record) -> M:
        return self.message_type.from_json(record.value)  # type: ignore[return-value]

    @abstractmethod
    def handle(self, items: Sequence[Item[M]]) -> list[Outgoing]:
        """Process and store a batch; return what to publish. Raise to fail the batch."""

    def split(self, items: Sequence[Item[M]], parts: int) -> list[Sequence[Item[M]]]:
        """The batch as at most `parts` sub-batches that touch disjoint rows, so the
        runner may `handle` them at once on threads of their own. By default the batch
        stays whole: items that may share rows must be handled in one transaction."""
        return [items]

    @classmethod
    def transient_errors(cls) -> tuple[type[BaseException], ...]:
        """Errors of the environment, not of a message: retried until they pass."""
        from sqlalchemy.exc import InterfaceError, OperationalError

        return (OperationalError, InterfaceError, BusError, ConnectionError, TimeoutError)

    def run(self, stop: StopFlag) -> None:
        settings = self.ctx.settings
        Runner(
            self,
            batch_size=settings.stage_batch_size,
            max_retries=settings.stage_max_retries,
            threads=settings.stage_threads,
            stop=stop,
        ).run()


class PeriodicStage(Stage):
    """A stage driven by a timer rather than by messages (the scheduler): `tick` runs
    every `interval` seconds until stopped. Its state lives in the database, so `tick`
    must be safe to repeat after a crash; the runner only keeps it going."""

    #: Seconds between the start of one tick and the next (a subclass may set it per
    #: instance, from its config).
    interval: float = 10.0

    @abstractmethod
    def tick(self) -> None:
        """One round of work; idempotent."""

    def run(self, stop: StopFlag) -> None:
        run_periodic(self.name, self.tick, self.interval, stop)


def run_periodic(
    name: str,
    tick: Callable[[], None],
    interval: float,
    stop: StopFlag,
    wake: threading.Event | None = None,
) -> None:
    """Call `tick` every `interval` seconds until `stop`, or sooner when `wake` is set.
    Errors of the environment (database or broker away) are waited out with backoff, as
    for consuming stages; any other error ends the loop, so the supervisor restarts the
    process and it shows."""
    metrics.STAGE_UP.labels(name).set(1)
    log.info("stage %s: every %.1fs", name, interval)
    backoff = 0.0
    try:
        while not stop:
            started = time.perf_counter()
            try:
                tick()
            except ConsumerStage.transient_errors() as exc:
                metrics.STAGE_TRANSIENT_ERRORS.labels(name).inc()
                backoff = min(max(backoff * 2, interval), TRANSIENT_BACKOFF_MAX)
                log.error("stage %s: %s; retrying in %.1fs", name, _one_line(exc), backoff)
                stop.wait(backoff)
                continue
            backoff = 0.0
            took = time.perf_counter() - started
            metrics.STAGE_PROCESSING.labels(name).observe(took)
            if wake is None:
                stop.wait(max(interval - took, 0.0))
            elif wake.wait(max(interval - took, 0.0)):
                wake.clear()
    finally:
        metrics.STAGE_UP.labels(name).set(0)
        log.info("stage %s: stopped", name)


def stage_classes() -> dict[str, type[Stage]]:
    """Every stage installed, by name (entry-point group `yuqing.stages`)."""
    found: dict[str, type[Stage]] = {}
    for ep in entry_points(group=STAGE_GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception:
            log.exception("cannot load stage %r from %s", ep.name, ep.value)
    return found


def ensure_topics(bus: Bus, settings: Settings) -> None:
    """Create the pipeline topics and their dead-letter topics if they do not exist."""
    wanted = {t: settings.topic_partitions for t in TOPICS}
    wanted.update({dlq_topic(t): 1 for t in TOPICS})
    bus.create_topics(wanted)


class StopFlag:
    """Set by SIGTERM/SIGINT (or by a test); the loop ends after the batch in hand."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self, *_: object) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.set)
            signal.signal(signal.SIGINT, self.set)


@dataclass
class _Handled:
    """What handling a batch (or a part of one) gave: messages to publish, and records
    for the dead-letter topic with the reason. Published by the runner's own thread."""

    outgoing: list[Outgoing] = field(default_factory=list)
    dead: list[tuple[Record, str]] = field(default_factory=list)

    def add(self, other: _Handled) -> None:
        self.outgoing.extend(other.outgoing)
        self.dead.extend(other.dead)


class _Interrupted(Exception):
    """Stop was requested while waiting out a transient error."""


def _one_line(exc: BaseException) -> str:
    return " ".join("".join(traceback.format_exception_only(exc)).split())[:1000]


class Runner:
    """Runs one stage until stopped."""

    def __init__(
        self,
        stage: ConsumerStage[Any],
        *,
        batch_size: int = 1000,
        max_retries: int = 3,
        retry_backoff: float = 0.2,
        poll_timeout: float = 0.5,
        threads: int = 1,
        stop: StopFlag | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.stage = stage
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.poll_timeout = poll_timeout
        self.threads = threads
        self.stop = stop if stop is not None else StopFlag()
        self._sleep = sleep
        self._lag_at = 0.0
        self._pool: ThreadPoolExecutor | None = None

    def run(self) -> None:
        bus = self.stage.ctx.bus
        name = self.stage.name
        metrics.STAGE_UP.labels(name).set(1)
        log.info(
            "stage %s: consuming %s as group %s",
            name,
            ", ".join(self.stage.topics),
            self.stage.group,
        )
        try:
            with (
                bus.consumer(self.stage.topics, self.stage.group) as consumer,
                bus.producer() as producer,
            ):
                while not self.stop:
                    records = consumer.poll(self.batch_size, self.poll_timeout)
                    if records:
                        with collector.paused():
                            self.process_batch(records, consumer, producer)
                    self._report_lag(consumer)
        finally:
            if self._pool is not None:
                self._pool.shutdown()
            metrics.STAGE_UP.labels(name).set(0)
            log.info("stage %s: stopped", name)

    def process_batch(self, records: list[Record], consumer: Consumer, producer: Producer) -> None:
        """Decode, handle, publish, commit one polled batch."""
        name = self.stage.name
        started = time.perf_counter()
        items: list[Item[Any]] = []
        for record in records:
            try:
                items.append(Item(record, self.stage.decode(record)))
            except MessageError as exc:
                self._dead_letter(producer, record, f"undecodable: {exc.reason}")
        try:
            handled = self._handle_parts(items)
        except _Interrupted:
            return  # stopped during an outage: nothing committed, the batch comes again
        for record, reason in handled.dead:
            self._dead_letter(producer, record, reason)
        for out in handled.outgoing:
            producer.publish(out.topic, out.value.to_json(), out.key.encode() if out.key else None)
        producer.flush()
        consumer.commit(records)
        metrics.STAGE_PROCESSING.labels(name).observe(time.perf_counter() - started)

    def _handle(self, items: list[Item[Any]]) -> list[Outgoing]:
        """`stage.handle`, waiting out transient errors (database or broker away) for as
        long as they last: they say nothing about the messages, so no message may be
        dead-lettered for them."""
        delay = self.retry_backoff
        while True:
            try:
                return self.stage.handle(items)
            except self.stage.transient_errors() as exc:
                metrics.STAGE_TRANSIENT_ERRORS.labels(self.stage.name).inc()
                log.error("stage %s: %s; retrying in %.1fs", self.stage.name, _one_line(exc), delay)
                if self.stop.wait(delay):
                    raise _Interrupted from exc
                delay = min(delay * 2, TRANSIENT_BACKOFF_MAX)

    def _handle_parts(self, items: list[Item[Any]]) -> _Handled:
        """The batch handled whole, or split by the stage and its parts handled on the
        runner's threads at once. Every part is waited for, so none is still running
        when the batch is published and committed, or when a stop leaves it."""
        parts = self.stage.split(items, self.threads) if len(items) > 1 and self.threads > 1 else []
        if len(parts) < 2:
            return self._handle_with_retries(items) if items else _Handled()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, f"{self.stage.name}-part")
        futures = [self._pool.submit(self._handle_with_retries, list(part)) for part in parts]
        wait(futures)
        done = _Handled()
        for future in futures:
            done.add(future.result())  # a part's _Interrupted goes up from here
        return done

    def _handle_with_retries(self, items: list[Item[Any]]) -> _Handled:
        try:
            out = self._handle(items)
        except _Interrupted:
            raise
        except Exception:
            log.warning(
                "stage %s: batch of %d failed; retrying one by one",
                self.stage.name,
                len(items),
                exc_info=True,
            )
        else:
            metrics.STAGE_MESSAGES.labels(self.stage.name, "ok").inc(len(items))
            return _Handled(out)
        result = _Handled()
        for item in items:
            result.add(self._handle_one(item))
        return result

    def _handle_one(self, item: Item[Any]) -> _Handled:
        error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(self.retry_backoff * 2 ** (attempt - 1))
            try:
                out = self.stage.handle([item])
            except Exception as exc:  # noqa: BLE001
                error = "".join(traceback.format_exception_only(exc)).strip()
                continue
            outcome = "retried" if attempt else "ok"
            metrics.STAGE_MESSAGES.labels(self.stage.name, outcome).inc()
            return _Handled(out)
        return _Handled(dead=[(item.record, f"failed {self.max_retries + 1} times: {error}")])

    def _dead_letter(self, producer: Producer, record: Record, reason: str) -> None:
        """Original bytes to `<topic>.dlq`, the why in headers (Kafka Connect's way)."""
        log.error(
            "stage %s: %s[%d]@%d to DLQ: %s",
            self.stage.name,
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        headers = [
            ("yuqing.error", reason[:2000].encode()),
            ("yuqing.stage", self.stage.name.encode()),
            ("yuqing.topic", record.topic.encode()),
            ("yuqing.partition", str(record.partition).encode()),
            ("yuqing.offset", str(record.offset).encode()),
            ("yuqing.failed_at", now_utc().isoformat().encode()),
        ]
        producer.publish(dlq_topic(record.topic), record.value, record.key, headers)
        metrics.DLQ_MESSAGES.labels(record.topic).inc()
        metrics.STAGE_MESSAGES.labels(self.stage.name, "dlq").inc()

    def _report_lag(self, consumer: Consumer) -> None:
        now = time.monotonic()
        if now - self._lag_at < LAG_REFRESH_SECONDS:
            return
        self._lag_at = now
        try:
            for topic, lag in consumer.lag().items():
                metrics.CONSUMER_LAG.labels(topic).set(lag)
        except Exception:
            log.debug("lag unavailable", exc_info=True)


class SchemaError(RuntimeError):
    """The database is not at the schema this code expects."""


def _check_schema(settings: Settings) -> None:
    from pipeline.storage.db import current_revision, head_revision

    current, head = current_revision(settings.resolved_database_url), head_revision()
    if current != head:
        raise SchemaError(
            f"database is at revision {current or '(empty)'}, this version needs {head}: "
            "run `yuqing db upgrade`"
        )


def run_stage(name: str, settings: Settings, stop: StopFlag | None = None) -> None:
    """Run the named stage in this process until SIGTERM/SIGINT (or `stop`)."""
    classes = stage_classes()
    if name not in classes:
        raise KeyError(f"unknown stage {name!r}; installed: {', '.join(sorted(classes))}")
    stop = stop if stop is not None else StopFlag()
    stop.install()
    _check_schema(settings)
    bus = open_bus(settings)
    try:
        ensure_topics(bus, settings)
        stage = classes[name](StageContext(settings=settings, bus=bus))
        collector.freeze_loaded()
        try:
            stage.run(stop)
        finally:
            stage.close()
    finally:
        bus.close()
