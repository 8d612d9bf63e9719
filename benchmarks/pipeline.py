"""Pipeline throughput and crawl-to-alert latency, `posts.raw` to stored alerts.

    python benchmarks/pipeline.py [--posts 3000] [--rate 100] [--seconds 20]
                                  [--setups local-sqlite,kafka-postgres]
                                  [--postgres URL] [--kafka HOST:PORT]
                                  [--stage-threads N]

For each setup it starts `yuqing run persist classifier responder` (three stage
processes under the supervisor, sharing the machine's cores), warms it up until the
models are loaded, then:

- throughput: publishes `--posts` posts (serialised before the clock starts, as a
  crawler hands them over) to `posts.raw` at once and times until the
  responder has filed every one into an event (its alerts are committed in the same
  transaction); posts/s over that span, and `sustained_posts_per_second` from 10 % to
  90 % of them filed (the full pipeline's rate, without its fill and drain);
- latency: publishes at a steady `--rate` posts/s for `--seconds`, each post with its
  `fetched_at` set as it is published, and reads the `alerts` topic: for every alert
  created, the time from its first post's `fetched_at` to the alert message arriving
  (it is published after the commit, so this bounds fetched_at → commit from above);
  p50 and p99;
- CPU: the CPU time each stage process spent per post during the throughput run, and
  the whole machine's busy CPU time per post (database server and broker included).
  On a shared machine posts/s moves with the other tenants' load; CPU per post is the
  steadier figure for comparing two versions.

Posts are 250–350 characters, built from the department corpus
(`classifiers/data/departments/labels.jsonl`) with a complaint phrase, a third of them
Weibo-style reposts of earlier ones. `kafka-postgres` starts a Tansu broker unless
`--kafka` names one, and uses a schema of its own on `--postgres` (default: the test
server's URL). `--stage-threads` sets `YUQING_STAGE_THREADS` for the stages (default: the
setting's own), to compare the responder handling a batch's topics at once with one
thread.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.bus import open_bus  # noqa: E402
from pipeline.messages import TOPIC_ALERTS, TOPIC_POSTS_RAW, Alert, Post  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402
from responders.events import event_id_for  # noqa: E402

CORPUS = REPO / "classifiers" / "data" / "departments" / "labels.jsonl"
COMPLAINTS = [
    "周边居民反映多次，至今无人处理，希望有关部门尽快解决。",
    "市民投诉称问题已经持续一个多月，相关部门回应迟缓，群众意见很大。",
    "网友发帖反映此事，引发大量转发和评论，要求相关部门给个说法。",
]
POSTGRES_URL = os.environ.get(
    "YUQING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class Posts:
    """Synthetic posts: corpus sentences of one department plus a complaint; a third
    reposts of an earlier post (which cluster into its event)."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        by_label: dict[str, list[str]] = {}
        for line in CORPUS.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            by_label.setdefault(row["label"], []).append(row["text"])
        self.groups = [texts for texts in by_label.values() if len(texts) >= 5]
        self.originals: list[str] = []

    def text(self) -> str:
        if self.originals and self.rng.random() < 0.33:
            original = self.rng.choice(self.originals[-200:])
            return f"转发微博 //@网友{self.rng.randint(1, 99999)}: 关注 //@本地资讯: {original}"
        texts = self.rng.choice(self.groups)
        parts: list[str] = []
        while sum(map(len, parts)) < self.rng.randint(220, 300):
            parts.append(self.rng.choice(texts))
        body = "".join(parts)[:300] + self.rng.choice(COMPLAINTS)
        self.originals.append(body)
        return body

    def post(self, run: str, i: int) -> Post:
        return Post(
            source=self.rng.choice(["district-weibo", "local-forum", "district-news-rss"]),
            url=f"https://bench.example.cn/{run}/{i}",
            text=self.text(),
            fetched_at=datetime.now(UTC),
        )


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    base = sa.make_url(url)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def kafka(address: str | None, log: Path) -> Iterator[str]:
    if address:
        yield address
        return
    from pipeline.bus.tansu import tansu_broker

    with tansu_broker(log) as started:
        yield started


#: How often the benchmark counts the posts filed. Each count is a scan of
#: `event_posts` (~1 ms at 40,000 rows), on the cores being measured: read every 50 ms,
#: it cost the server ~3 µs a post in a 10,000-post run and ~13 in a 40,000-post one.
POLL_SECONDS = 0.1


class Pipeline:
    """`yuqing run persist classifier responder` on a fresh data directory."""

    def __init__(self, env: dict[str, str], database_url: str) -> None:
        self.env = env
        self.engine = sa.create_engine(database_url)
        self.settings = load_settings(
            **{
                k.removeprefix("YUQING_").lower(): v
                for k, v in env.items()
                if k.startswith("YUQING_")
            }
        )
        self.bus = open_bus(self.settings)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "pipeline.cli"]
        subprocess.run(
            [*command, "db", "upgrade"], env=self.env, check=True, cwd=REPO, capture_output=True
        )
        self.log = open(Path(self.env["YUQING_DATA_DIR"]) / "run.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [*command, "run", "persist", "classifier", "responder"],
            env=self.env,
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)
            self.log.close()
        self.bus.close()
        self.engine.dispose()

    def filed(self) -> int:
        """Posts the responder has filed into events (committed)."""
        try:
            with self.engine.connect() as c:
                return c.execute(sa.text("SELECT count(*) FROM event_posts")).scalar_one()
        except sa.exc.DBAPIError:
            return 0

    def alerts(self) -> int:
        with self.engine.connect() as c:
            return c.execute(sa.text("SELECT count(*) FROM alerts")).scalar_one()

    def publish(self, records: list[tuple[bytes, bytes]]) -> None:
        """Publish posts as `encoded` to `posts.raw` and wait for the broker."""
        with self.bus.producer() as producer:
            for value, key in records:
                producer.publish(TOPIC_POSTS_RAW, value, key)
            producer.flush()

    def wait_filed(self, count: int, timeout: float) -> list[tuple[float, int]]:
        """Wait until `count` posts are filed; the (perf_counter, filed) readings."""
        deadline = time.monotonic() + timeout
        readings = [(time.perf_counter(), self.filed())]
        while readings[-1][1] < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{readings[-1][1]} of {count} posts filed after {timeout}s")
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError("yuqing run exited; see run.log")
            time.sleep(POLL_SECONDS)
            readings.append((time.perf_counter(), self.filed()))
        return readings


def sustained_rate(readings: list[tuple[float, int]], before: int, total: int) -> float | None:
    """Posts/s from the reading where 10 % of `total` had been filed to the one where 90 %
    had: the rate of the full pipeline, without the fill (the first posts pass every
    stage's first batch before any is filed) and the drain (the responder's last batch
    after the classifier's). Filing comes in steps of a responder batch, read every
    `POLL_SECONDS`. None when one reading saw both (a run of a batch or two)."""
    low = next(r for r in readings if r[1] - before >= 0.1 * total)
    high = next(r for r in readings if r[1] - before >= 0.9 * total)
    return (high[1] - low[1]) / (high[0] - low[0]) if high[0] > low[0] else None


def encoded(post: Post) -> tuple[bytes, bytes]:
    """The post as the (value, key) a crawler publishes."""
    return post.to_json(), post.id.encode()


def latency(pipe: Pipeline, gen: Posts, rate: float, seconds: float) -> list[float]:
    """Seconds from fetched_at to the alert message, per alert created."""
    fetched: dict[str, datetime] = {}
    arrived: dict[str, float] = {}
    stop, joined = threading.Event(), threading.Event()

    def read() -> None:
        with pipe.bus.consumer([TOPIC_ALERTS], f"bench-{uuid.uuid4().hex[:6]}") as consumer:
            while not stop.is_set():
                records = consumer.poll(500, 0.1)
                if consumer.assignment():
                    joined.set()
                for record in records:
                    message = Alert.from_json(record.value)
                    if message.change == "created" and message.event_id:
                        arrived.setdefault(message.event_id, time.time())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Posts go out once the reader has its partitions: an alert read late because the
    # reader was still joining its group would count as late.
    if not joined.wait(120):
        raise TimeoutError("the alerts reader got no partitions within 120 s")
    before = pipe.filed()
    total = int(rate * seconds)
    started = time.monotonic()
    with pipe.bus.producer() as producer:
        for i in range(total):
            wait = started + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            post = gen.post("latency", i)
            fetched[event_id_for(post.id)] = post.fetched_at
            producer.publish(TOPIC_POSTS_RAW, *encoded(post))
            producer.flush()
    pipe.wait_filed(before + total, 120)
    time.sleep(2)
    stop.set()
    reader.join(10)
    return sorted(arrived[e] - fetched[e].timestamp() for e in arrived if e in fetched)


#: Other processes whose CPU is reported, by the start of their command name: the
#: database server (all its backends) and the Tansu broker (`tansu-v0.6.0-…`).
SERVERS = {"postgres": "postgres", "tansu": "broker"}


def stage_cpu(supervisor: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of each stage process under `supervisor`, of
    the PostgreSQL server and the broker (`SERVERS`; a backend that exits between two
    readings drops out, so those are lower bounds), of this benchmark's own process
    (`driver`: publishing and reading back), and `machine`: the busy CPU seconds of the
    whole machine.

    CPU per post is the steady figure on a shared machine, where posts/s moves with the
    other tenants' load from run to run."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm, stat = (proc / "stat").read_text().split("(", 1)[1].rsplit(")", 1)
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # exited meanwhile
        fields = stat.split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(fields[1]) == supervisor and b"stage" in cmd:
            out[cmd[cmd.index(b"stage") + 1].decode()] = seconds
        elif server := next((SERVERS[p] for p in SERVERS if comm.startswith(p)), None):
            out[server] = out.get(server, 0.0) + seconds
        elif int(proc.name) == os.getpid():
            out["driver"] = seconds
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(fields[3]) + int(fields[4])  # idle + iowait
    out["machine"] = (sum(map(int, fields[:8])) - idle) / tick
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def run_setup(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    data = tmp / name
    data.mkdir(parents=True, exist_ok=True)  # `db upgrade` only makes it for SQLite
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUQING_")}
    env.update(
        YUQING_CONFIG_DIR=str(REPO / "config"),
        YUQING_DATA_DIR=str(data),
        YUQING_METRICS_PORT="0",
        PYTHONPATH=str(REPO),
        YUQING_LOG_LEVEL="WARNING",
    )
    if args.stage_threads is not None:
        env["YUQING_STAGE_THREADS"] = str(args.stage_threads)
    use_kafka = name.startswith("kafka")
    broker = kafka(args.kafka, tmp / f"{name}-broker.log") if use_kafka else nullcontext("")
    database = (
        postgres_schema(args.postgres)
        if name.endswith("postgres")
        else nullcontext(f"sqlite:///{data / 'yuqing.sqlite3'}")
    )
    with broker as address, database as url:
        env["YUQING_DATABASE_URL"] = url
        if use_kafka:
            env.update(
                YUQING_BUS="kafka",
                YUQING_KAFKA_BOOTSTRAP_SERVERS=address,
                YUQING_KAFKA_SESSION_TIMEOUT_MS="6000",
            )
        gen = Posts()
        pipe = Pipeline(env, url)
        try:
            pipe.start()
            warm = [gen.post("warm", i) for i in range(50)]
            pipe.publish([encoded(post) for post in warm])
            pipe.wait_filed(len(warm), 300)
            # Encoded before the clock starts: what is timed is the pipeline, and the
            # crawlers' own work (building and serialising posts) is not part of it.
            posts = [encoded(gen.post("throughput", i)) for i in range(args.posts)]
            assert pipe.process is not None
            cpu_before = stage_cpu(pipe.process.pid)
            started = time.perf_counter()
            pipe.publish(posts)
            readings = pipe.wait_filed(len(warm) + len(posts), 600)
            elapsed = time.perf_counter() - started
            sustained = sustained_rate(readings, len(warm), len(posts))
            cpu = stage_cpu(pipe.process.pid)
            alerts = pipe.alerts()
            delays = latency(pipe, gen, args.rate, args.seconds)
        finally:
            pipe.stop()
    return {
        "posts": args.posts,
        "stage_threads": pipe.settings.stage_threads,
        "seconds": round(elapsed, 2),
        "posts_per_second": round(args.posts / elapsed, 1),
        "sustained_posts_per_second": None if sustained is None else round(sustained, 1),
        "alerts_stored": alerts,
        "latency_alerts": len(delays),
        "latency_p50_s": round(percentile(delays, 50), 3),
        "latency_p99_s": round(percentile(delays, 99), 3),
        # CPU µs per post during the throughput run (the machine figure includes the
        # database server, the broker and this script's publishing).
        **{
            f"cpu_us_per_post_{name}": round(
                (cpu[name] - cpu_before.get(name, 0.0)) / args.posts * 1e6
            )
            for name in sorted(cpu)
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--setups", default="local-sqlite,kafka-postgres")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--kafka", default=None)
    parser.add_argument("--stage-threads", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="yuqing-bench-") as tmp:
        for name in args.setups.split(","):
            result = run_setup(name.strip(), args, Path(tmp))
            print(json.dumps({"setup": name, **result}), flush=True)


if __name__ == "__main__":
    main()
