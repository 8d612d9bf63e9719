"""Weekly report speed: a week of N alerts (and a previous week of N/2, events, posts,
classifications, imported history), then the report built and rendered in each format.

    python benchmarks/report.py [--alerts 100000] [--database URL] [--out DIR]

Without --database a fresh SQLite file in a temporary directory is used; for PostgreSQL
pass an empty database or schema (`postgresql+psycopg://…`), which is migrated. With
--out the rendered HTML, PDF and JSON are written there (the README's picture is page 1
of the PDF of a small run: `--alerts 3000 --out docs/`).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

# This directory holds a `pipeline.py` benchmark, which would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import DepartmentsFile, SlaFile, load_file
from pipeline.storage import models
from pipeline.storage.db import make_engine, session_factory, upgrade
from pipeline.storage.repository import upsert_departments
from responders.deadlines import DeadlineCalculator, WorkCalendar
from responders.reports.config import ReportOptions
from responders.reports.render import render
from responders.reports.weekly import IsoWeek, build_weekly

CONFIG = Path(__file__).resolve().parents[1] / "config"
TZ = ZoneInfo("Asia/Shanghai")
WEEK = IsoWeek(2026, 47)
AS_OF = datetime(2026, 11, 23, 8, 0, tzinfo=TZ)
SEVERITIES = (("critical", 0.02), ("high", 0.13), ("medium", 0.45), ("low", 0.40))
SENTIMENTS = (("negative", 0.55), ("neutral", 0.35), ("positive", 0.10))
ALERTS_PER_EVENT = 10
POSTS_PER_EVENT = 4
CHUNK = 5_000
HEADLINES = ("居民集中反映", "网民质疑处置进度", "媒体报道引发关注", "投诉量短时上升")


def chunks(rows: list[dict], size: int = CHUNK) -> Iterator[list[dict]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


class Seeder:
    """Random but repeatable alerts shaped like a busy district: most on time, a tail of
    late and unanswered ones, a few departments far behind."""

    def __init__(self, calculator: DeadlineCalculator, departments: DepartmentsFile, seed: int):
        self.rng = random.Random(seed)
        self.calculator = calculator
        self.departments = [(d.id, d.topic) for d in departments.departments]
        # A few departments are slow: they make the ranking and the 通报 list interesting.
        self.slowness = {d: self.rng.choice((0.5, 0.8, 0.8, 1.0, 1.3)) for d, _ in self.departments}

    def _pick(self, weighted: tuple[tuple[str, float], ...]) -> str:
        return self.rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]

    def _after(self, due: datetime, start: datetime, slowness: float) -> datetime | None:
        """When it happened: usually well before the due time, sometimes late or never."""
        span = (due - start).total_seconds()
        roll = self.rng.random()
        if roll < 0.02 * slowness:
            return None
        factor = self.rng.lognormvariate(-1.0, 0.7) * slowness
        return start + timedelta(seconds=max(60.0, span * factor))

    def week(self, prefix: str, start: datetime, n: int) -> tuple[list[dict], list[dict]]:
        """`n` alert rows raised in the week from `start`, and their events."""
        alerts, events = [], []
        for i in range(n):
            if i % ALERTS_PER_EVENT == 0:  # a new event: its alerts follow within 36 h
                lead, topic = self.rng.choice(self.departments)
                first = start + timedelta(seconds=self.rng.uniform(0, 6 * 86400))
            dept = lead if self.rng.random() < 0.7 else self.rng.choice(self.departments)[0]
            severity = self._pick(SEVERITIES)
            created = first + timedelta(seconds=self.rng.uniform(0, 36 * 3600))
            due = self.calculator.due(severity, created)
            slowness = self.slowness[dept]
            ack = self._after(due.ack_due, created, slowness)
            responded = self._after(due.response_due, created, slowness)
            if responded is not None and (ack is None or ack > responded):
                ack = responded
            event_id = f"{prefix}-ev-{i // ALERTS_PER_EVENT}"
            if i % ALERTS_PER_EVENT == 0:
                events.append(
                    {
                        "id": event_id,
                        "title": f"{topic}：{self.rng.choice(HEADLINES)}",
                        "topic": topic,
                        "first_seen": first,
                        "last_seen": created + timedelta(days=1),
                        "post_count": POSTS_PER_EVENT,
                        "source_count": 2,
                        "heat": self.rng.uniform(1, 100),
                        "state": "open",
                    }
                )
            alerts.append(
                {
                    "id": f"{prefix}-{i}",
                    "event_id": event_id,
                    "department_id": dept,
                    "role": "lead",
                    "severity": severity,
                    "state": "responded" if responded else "acknowledged" if ack else "new",
                    "title": f"预警 {prefix}-{i}",
                    "topic": topic,
                    "sentiment": self._pick(SENTIMENTS),
                    "dedup_key": f"bench:{prefix}-{i}",
                    "created_at": created,
                    "updated_at": created,
                    "ack_due": due.ack_due,
                    "response_due": due.response_due,
                    "press_conference_due": due.press_conference_due,
                    "acknowledged_at": ack,
                    "responded_at": responded,
                    "transfer_rejections": 2 if self.rng.random() < 0.0005 else 0,
                }
            )
        return alerts, events

    def posts(self, events: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
        """A few posts per event around its first day, each classified once."""
        posts, members, classes = [], [], []
        for event in events:
            for k in range(POSTS_PER_EVENT):
                at = event["first_seen"] + timedelta(hours=self.rng.uniform(0, 30))
                post_id = f"{event['id']}-p{k}"
                posts.append(
                    {"id": post_id, "source": "bench", "channel": "feed", "text": "帖文",
                     "fetched_at": at, "truncated": False, "stored_at": at}
                )  # fmt: skip
                members.append({"event_id": event["id"], "post_id": post_id, "at": at})
                classes.append(
                    {"post_id": post_id, "model_version": "bench", "policy_relevant": True,
                     "relevance_score": 0.9, "departments": [], "topic": event["topic"],
                     "sentiment": self._pick(SENTIMENTS), "sentiment_score": 0.9,
                     "sensitivity": [], "explanation": {}, "classified_at": at}
                )  # fmt: skip
        return posts, members, classes


def seed(url: str, n: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    departments = load_file(CONFIG, "departments.yaml", DepartmentsFile)
    calculator = DeadlineCalculator(load_file(CONFIG, "sla.yaml", SlaFile), WorkCalendar())
    seeder = Seeder(calculator, departments, seed=47)
    start = WEEK.window(TZ).start
    this, this_events = seeder.week("w", start, n)
    last, last_events = seeder.week("p", start - timedelta(days=7), n // 2)
    posts, members, classes = seeder.posts(this_events + last_events)
    with session_factory(engine).begin() as session:
        upsert_departments(
            session, [d.model_dump(exclude={"triage", "topic"}) for d in departments.departments]
        )
        for model, rows in (
            (models.Event, this_events + last_events),
            (models.Alert, this + last),
            (models.Post, posts),
            (models.EventPost, members),
            (models.Classification, classes),
        ):
            for chunk in chunks(rows):
                session.execute(sa.insert(model), chunk)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database")
    parser.add_argument("--out", type=Path, help="write the rendered reports here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{tmp}/report.sqlite3"
        started = time.perf_counter()
        seed(url, args.alerts)
        print(f"seeded {args.alerts:,} alerts (+{args.alerts // 2:,} the week before) "
              f"in {time.perf_counter() - started:.1f}s")  # fmt: skip
        from pipeline.settings import Settings

        options = ReportOptions.load(Settings(config_dir=CONFIG))
        engine = make_engine(url)
        with session_factory(engine)() as session:
            started = time.perf_counter()
            report = build_weekly(session, WEEK, options, AS_OF)
            figures = time.perf_counter() - started
        engine.dispose()
        print(f"figures (SQL): {figures:.2f}s  ({report.headline.tally.alerts:,} alerts, "
              f"{len(report.departments)} departments, {len(report.named)} named)")  # fmt: skip
        for fmt in ("json", "html", "pdf"):
            started = time.perf_counter()
            content = render(report, fmt)
            print(f"render {fmt}: {time.perf_counter() - started:.2f}s ({len(content):,} bytes)")
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / f"report-weekly.{fmt}").write_bytes(content)


if __name__ == "__main__":
    main()
