"""Report fixtures: a fixed fixture week (ISO 2026-W47) whose figures the tests work out
by hand, on SQLite and (for the figures) PostgreSQL, and the web fixtures for the API.

The week, in Asia/Shanghai; T = Tuesday 2026-11-17 10:00 (`T0`); report made Monday
2026-11-23 08:00 (`AS_OF`), when the weekly report is generated:

| item | dept        | severity | raised  | ack      | first response | notes                  |
| E1   | environment | critical | T       | +20m ok  | +4h ok         | event ev-1 (posts)     |
| E2   | environment | high     | T+1d    | +3h late | +30h late      | event ev-2, no posts   |
| E3   | environment | high     | T+2d    | +1h ok   | none, overdue  |                        |
| E4   | environment | critical | T       | —        | —              | dismissed: not counted |
| D1   | education   | high     | T       | +30m ok  | +10h ok        |                        |
| D2   | education   | medium   | T+1d    | +5h ok   | +20h ok        |                        |
| D3   | education   | low      | Fri 16h | —        | —              | not due; 2 rejections  |
| H1   | housing     | high     | T       | +1h ok   | +23h ok        | imported history       |
| H2   | housing     | critical | T+2d    | +40m late| +6h late       | imported history       |
| P1   | environment | high     | T−7d    | +1h ok   | +5h ok         | previous week          |
| N1   | environment | high     | Mon 07h | —        | —              | next week: not counted |
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from pipeline.settings import Settings
from pipeline.storage import models
from pipeline.storage.db import session_factory
from responders.deadlines import DeadlineCalculator
from responders.reports.config import ReportOptions
from responders.reports.weekly import IsoWeek
from tests.pipeline.processes import base_env
from tests.responders.conftest import CONFIG, T0, migrated_engine, new_event
from tests.responders.web.conftest import (  # noqa: F401 - web fixtures for the API tests
    app,
    client,
    password_hash,
    tokens,
    web_settings,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEK = IsoWeek(2026, 47)
AS_OF = datetime(2026, 11, 23, 8, 0, tzinfo=SHANGHAI)
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def env(isolated_env: Path, sqlite_url: str) -> dict[str, str]:
    """The environment of a `yuqing` process on this test's SQLite database."""
    return {**base_env(isolated_env / "var"), "YUQING_DATABASE_URL": sqlite_url}


@pytest.fixture(scope="session")
def options() -> ReportOptions:
    return ReportOptions.load(Settings(config_dir=CONFIG))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A session on a migrated database with the departments, SQLite or PostgreSQL."""
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("pg_schema_url")
    engine = migrated_engine(url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def add_alert(
    session: Session,
    deadlines: DeadlineCalculator,
    alert_id: str,
    department: str,
    severity: str,
    created: datetime,
    *,
    ack: timedelta | None = None,
    respond: timedelta | None = None,
    event_id: str | None = None,
    topic: str | None = None,
    sentiment: str | None = None,
    state: str | None = None,
    transfer_rejections: int = 0,
) -> models.Alert:
    """An alert row as the queue leaves it, with the SLA config's due times."""
    due = deadlines.due(severity, created)
    acknowledged = created + ack if ack else None
    responded = created + respond if respond else None
    alert = models.Alert(
        id=alert_id,
        event_id=event_id,
        department_id=department,
        severity=severity,
        state=state or ("responded" if responded else "acknowledged" if ack else "new"),
        title=f"预警 {alert_id}",
        topic=topic,
        sentiment=sentiment,
        dedup_key=f"test:{alert_id}",
        created_at=created,
        ack_due=due.ack_due,
        response_due=due.response_due,
        press_conference_due=due.press_conference_due,
        acknowledged_at=acknowledged,
        responded_at=responded,
        transfer_rejections=transfer_rejections,
    )
    session.add(alert)
    session.flush()
    return alert


def add_history(
    session: Session,
    deadlines: DeadlineCalculator,
    item_id: str,
    department: str,
    severity: str,
    created: datetime,
    ack: timedelta,
    respond: timedelta,
) -> None:
    due = deadlines.due(severity, created)
    session.add(
        models.HistoryItem(
            id=item_id,
            title=f"历史 {item_id}",
            department_id=department,
            severity=severity,
            created_at=created,
            ack_due=due.ack_due,
            response_due=due.response_due,
            acknowledged_at=created + ack,
            responded_at=created + respond,
        )
    )


def add_post(session: Session, event_id: str, post_id: str, at: datetime, *sentiments: str) -> None:
    """A post of the event classified once per sentiment given, the last one newest."""
    session.add(models.Post(id=post_id, source="weibo", channel="feed", text="帖文", fetched_at=at))
    session.flush()
    session.add(models.EventPost(event_id=event_id, post_id=post_id, at=at))
    for version, sentiment in enumerate(sentiments):
        session.add(
            models.Classification(
                post_id=post_id,
                model_version=f"v{version}",
                policy_relevant=True,
                relevance_score=0.9,
                topic="环境保护",
                sentiment=sentiment,
                sentiment_score=0.9,
                classified_at=at + version * M,
            )
        )


FRIDAY = datetime(2026, 11, 20, 16, 0, tzinfo=SHANGHAI)
ENV = {"topic": "环境保护"}
EDU = {"topic": "教育"}
#: id, department, severity, raised, ack after, first response after, other columns.
ALERTS: list[tuple[str, str, str, datetime, timedelta | None, timedelta | None, dict]] = [
    ("E1", "environment", "critical", T0, 20 * M, 4 * H,
     {**ENV, "event_id": "ev-1", "sentiment": "negative"}),
    ("E2", "environment", "high", T0 + D, 3 * H, 30 * H,
     {**ENV, "event_id": "ev-2", "sentiment": "negative"}),
    ("E3", "environment", "high", T0 + 2 * D, H, None, {**ENV, "sentiment": "neutral"}),
    ("E4", "environment", "critical", T0, None, None, {**ENV, "state": "dismissed"}),
    ("D1", "education", "high", T0, 30 * M, 10 * H, {**EDU, "sentiment": "negative"}),
    ("D2", "education", "medium", T0 + D, 5 * H, 20 * H, {**EDU, "sentiment": "neutral"}),
    ("D3", "education", "low", FRIDAY, None, None,
     {**EDU, "sentiment": "positive", "transfer_rejections": 2}),
    ("P1", "environment", "high", T0 - 7 * D, H, 5 * H, ENV),
    ("N1", "environment", "high", AS_OF - H, None, None, ENV),
]  # fmt: skip
#: id, department, severity, raised, ack after, first response after.
HISTORY = [
    ("H1", "housing", "high", T0, H, 23 * H),
    ("H2", "housing", "critical", T0 + 2 * D, 40 * M, 6 * H),
]
#: Posts of ev-1 around E1's response (T+4h): 3 negative in the 24 h before, 1 after.
POSTS = [
    (-25 * H, ("negative",)),  # outside the window
    (-5 * H, ("negative",)),
    (-3 * H, ("negative",)),
    (-2 * H, ("negative",)),
    (-H, ("neutral",)),
    (H, ("negative",)),
    (2 * H, ("positive",)),
    (3 * H, ("negative", "neutral")),  # reclassified: neutral now
    (25 * H, ("negative",)),  # outside the window
]


def seed_fixture_week(session: Session, deadlines: DeadlineCalculator) -> None:
    """The items of the module docstring's table, committed."""
    ev1 = new_event(session, "ev-1", at=T0 - H)
    ev1.heat, ev1.title = 50.0, "化工厂异味扰民"
    new_event(session, "ev-2", at=T0 + D)
    for alert_id, dept, severity, created, ack, respond, extra in ALERTS:
        add_alert(
            session, deadlines, alert_id, dept, severity, created, ack=ack, respond=respond, **extra
        )
    for row in HISTORY:
        add_history(session, deadlines, *row)
    response = T0 + 4 * H
    for i, (offset, sentiments) in enumerate(POSTS):
        add_post(session, "ev-1", f"p{i}", response + offset, *sentiments)
    session.commit()
