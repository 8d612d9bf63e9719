"""The archive: Monday 08:00 generation is idempotent, stored as generated; the hook a
periodic stage calls; config/report.yaml validated like every config file."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from pipeline import config as config_files
from pipeline.storage.db import session_factory
from pipeline.storage.models import Report
from responders.deadlines import DeadlineCalculator
from responders.reports.archive import (
    WeeklyReportHook,
    archive_list,
    archived,
    generate_due_reports,
)
from responders.reports.config import ReportOptions
from responders.reports.weekly import IsoWeek
from tests.responders.conftest import CONFIG
from tests.responders.reports.conftest import AS_OF, WEEK, seed_fixture_week


@pytest.fixture
def light(options: ReportOptions) -> ReportOptions:
    """The shipped config archiving HTML and JSON (PDF has its own tests; it is slow)."""
    return dataclasses.replace(
        options, config=options.config.model_copy(update={"archive_formats": ("json", "html")})
    )


def test_generation_is_idempotent(
    session: Session, deadlines: DeadlineCalculator, light: ReportOptions
) -> None:
    seed_fixture_week(session, deadlines)
    assert generate_due_reports(session, AS_OF, light) == [
        ("2026-W47", "json"),
        ("2026-W47", "html"),
    ]
    session.commit()
    for later in (AS_OF, AS_OF + timedelta(hours=1), AS_OF + timedelta(days=6)):
        assert generate_due_reports(session, later, light) == []
    stored = json.loads(archived(session, WEEK, "json") or b"")
    assert (stored["week"], stored["alerts"]) == ("2026-W47", 8)
    assert [(r["week"], r["format"]) for r in archive_list(session)] == [
        ("2026-W47", "html"),
        ("2026-W47", "json"),
    ]
    # The next Monday 08:00 makes the next week's report.
    assert generate_due_reports(session, AS_OF + timedelta(days=7), light)[0][0] == "2026-W48"


def test_a_missing_format_is_added_alone(session: Session, light: ReportOptions) -> None:
    json_only = dataclasses.replace(
        light, config=light.config.model_copy(update={"archive_formats": ("json",)})
    )
    generate_due_reports(session, AS_OF, json_only)
    assert generate_due_reports(session, AS_OF, light) == [("2026-W47", "html")]


def test_the_hook_runs_on_its_clock_and_commits(engine: Engine, light: ReportOptions) -> None:
    now = [AS_OF - timedelta(minutes=1)]
    hook = WeeklyReportHook(session_factory(engine), light, clock=lambda: now[0])
    assert hook.tick() == [("2026-W46", "json"), ("2026-W46", "html")]  # Monday 07:59
    now[0] = AS_OF
    assert hook.tick() == [("2026-W47", "json"), ("2026-W47", "html")]
    assert hook.tick() == []
    with session_factory(engine)() as session:
        weeks = session.scalars(sa.select(Report.period).distinct().order_by(Report.period))
        assert list(weeks) == [str(IsoWeek(2026, 46)), str(WEEK)]


def test_report_yaml_is_checked_with_every_config_file(tmp_path: Path) -> None:
    assert config_files.check(CONFIG) == []
    bad = tmp_path / "config"
    bad.mkdir()
    for name in ("departments.yaml", "sla.yaml"):
        (bad / name).write_bytes((CONFIG / name).read_bytes())
    (bad / "report.yaml").write_text(
        "named:\n  response_on_time_rate_below: 80\n  overdue_severities: [urgent]\n",
        encoding="utf-8",
    )
    problems = config_files.check(bad)
    assert any("report.yaml: named.response_on_time_rate_below" in p for p in problems)
    assert any("report.yaml: named.overdue_severities.0" in p for p in problems)
