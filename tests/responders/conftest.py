"""Fixtures for the responder tests: a migrated database with the department catalog,
the SLA calculator of the repository's config, and alerts raised the way the stage does."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from pipeline.config import DepartmentsFile, SlaFile, load_file
from pipeline.storage import models
from pipeline.storage.db import make_engine, session_factory, upgrade
from pipeline.storage.repository import upsert_departments
from responders.deadlines import DeadlineCalculator, WorkCalendar
from responders.notify.message import Labels
from responders.queue import RaiseSpec, StageLog, raise_or_update

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
#: A Tuesday 10:00 in Shanghai, inside office hours, no holiday near.
T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)


def load_departments(session: Session) -> None:
    depts = load_file(CONFIG, "departments.yaml", DepartmentsFile)
    upsert_departments(
        session, [d.model_dump(exclude={"triage", "topic"}) for d in depts.departments]
    )


def migrated_engine(url: str) -> Engine:
    """An engine on `url` migrated to head, departments loaded."""
    upgrade(url)
    engine = make_engine(url)
    with session_factory(engine).begin() as session:
        load_departments(session)
    return engine


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test gets a copy (migrating is slow)."""
    path = tmp_path_factory.mktemp("template") / "yuqing.sqlite3"
    migrated_engine(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, _template_db: Path) -> str:
    """A SQLite database at head with the departments, of this test's own."""
    path = tmp_path / "db" / "yuqing.sqlite3"
    path.parent.mkdir()
    shutil.copyfile(_template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Engine]:
    """SQLite, or PostgreSQL for the tests marked `ON_BOTH`."""
    if getattr(request, "param", "sqlite") == "postgres":
        engine = migrated_engine(request.getfixturevalue("pg_schema_url"))
    else:
        engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


#: Runs a test on SQLite and on PostgreSQL (where locking and SQL differ).
ON_BOTH = pytest.mark.parametrize(
    "engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as session:
        yield session


@pytest.fixture(scope="session")
def deadlines() -> DeadlineCalculator:
    return DeadlineCalculator(load_file(CONFIG, "sla.yaml", SlaFile), WorkCalendar())


def new_event(
    session: Session, event_id: str, *, at: datetime = T0, posts: int = 1
) -> models.Event:
    event = models.Event(
        id=event_id,
        title=f"事件 {event_id}",
        topic="环境保护",
        first_seen=at,
        last_seen=at,
        post_count=posts,
        source_count=1,
        heat=10.0,
        state="open",
        sources=["weibo"],
    )
    session.add(event)
    session.flush()
    return event


@pytest.fixture
def make_alert(session: Session, deadlines: DeadlineCalculator) -> Callable[..., models.Alert]:
    """An alert raised by the stage's path (`raise_or_update`), committed."""
    counter = iter(range(1, 10_000))

    def make(
        department: str = "environment", severity: str = "medium", *, at: datetime = T0
    ) -> models.Alert:
        event = new_event(session, f"ev-{next(counter)}", at=at)
        spec = RaiseSpec(event, department, "lead", severity, event.title, topic=event.topic)
        log = StageLog()
        alert = raise_or_update(session, spec, [], now=at, deadlines=deadlines, log=log)
        [change] = log.write(session)
        assert change.kind == "created" and change.alert is alert
        session.commit()
        return alert

    return make


# --- escalation and notifications -------------------------------------------------------


class Clock:
    """An injectable clock that moves only when told."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **span: float) -> datetime:
        self.now += timedelta(**span)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def labels() -> Labels:
    """Department names, severity labels and time zone of the repository's config."""
    from pipeline.settings import Settings

    return Labels.load(Settings(config_dir=CONFIG))


def store_posts(session: Session, refs: list) -> None:
    """The `posts` rows event membership refers to (the classifier stores them first)."""
    from pipeline.storage.repository import upsert_posts

    upsert_posts(
        session,
        [
            {
                "id": r.post_id,
                "source": r.source,
                "channel": "ingest",
                "text": r.text,
                "fetched_at": r.at,
            }
            for r in refs
        ],
    )
