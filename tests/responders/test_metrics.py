"""Alert gauges read from the database at scrape time."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from pipeline.storage import models
from pipeline.storage.db import session_factory
from responders.metrics import AlertGauges
from responders.queue import Actor, act


def test_open_and_overdue_by_department(
    engine: Engine, session: Session, make_alert: Callable[..., models.Alert], deadlines
) -> None:
    make_alert("environment", "high")
    late = make_alert("environment", "low")
    late.overdue = True
    done = make_alert("water", "medium")
    press = Actor("press1", "press")
    act(session, done.id, press, "dismiss", reason="误报", deadlines=deadlines)
    session.commit()

    registry = CollectorRegistry()
    gauges = AlertGauges(session_factory(engine), min_interval=0)
    registry.register(gauges)
    text = generate_latest(registry).decode()
    assert 'yuqing_alerts_open{department="environment",severity="high"} 1.0' in text
    assert 'yuqing_alerts_open{department="environment",severity="low"} 1.0' in text
    assert 'department="water"' not in text  # dismissed: not open
    assert 'yuqing_alerts_overdue{department="environment"} 1.0' in text


def test_a_failing_database_keeps_the_last_figures(
    engine: Engine, make_alert: Callable[..., models.Alert]
) -> None:
    make_alert("environment", "high")
    calls = {"n": 0}
    sessions = session_factory(engine)

    def flaky() -> Session:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("database away")
        return sessions()

    registry = CollectorRegistry()
    registry.register(AlertGauges(flaky, min_interval=0))
    first = generate_latest(registry).decode()
    assert generate_latest(registry).decode() == first
    assert "yuqing_alerts_open{" in first
