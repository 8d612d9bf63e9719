"""`GET /api/reports/weekly` and `GET /api/reports`: leaders and the press office only,
every format, the archive served as generated."""

from __future__ import annotations

import dataclasses
from datetime import UTC

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from responders.deadlines import DeadlineCalculator
from responders.reports.archive import generate_due_reports
from responders.reports.config import ReportOptions
from responders.web import reports
from tests.responders.reports.conftest import AS_OF, add_alert, seed_fixture_week
from tests.responders.web.conftest import bearer

URL = "/api/reports/weekly?week=2026-W47"


@pytest.fixture(autouse=True)
def report_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API reports "as known now"; the fixture week's figures are worked out as
    known at `AS_OF` (a low alert raised that Friday is overdue a week later), so the
    endpoint's clock is set there: a fake clock, the one thing here that is not real."""
    monkeypatch.setattr(reports, "now_utc", lambda: AS_OF.astimezone(UTC))


@pytest.fixture
def seeded(session: Session, deadlines: DeadlineCalculator) -> None:
    seed_fixture_week(session, deadlines)


@pytest.mark.parametrize(
    ("user", "status"), [("leader1", 200), ("press1", 200), ("env1", 403), ("admin1", 403)]
)
def test_only_leaders_and_press_read_reports(
    client: TestClient, tokens: dict[str, str], user: str, status: int
) -> None:
    assert client.get(URL, headers=bearer(tokens[user])).status_code == status
    assert client.get("/api/reports", headers=bearer(tokens[user])).status_code == status


def test_anonymous_is_401(client: TestClient) -> None:
    assert client.get(URL).status_code == 401
    assert client.get("/api/reports").status_code == 401


def test_json_html_and_pdf(client: TestClient, tokens: dict[str, str], seeded: None) -> None:
    headers = bearer(tokens["leader1"])
    data = client.get(URL, headers=headers).json()
    assert (data["week"], data["alerts"], data["overdue"]) == ("2026-W47", 8, 3)

    html = client.get(f"{URL}&format=html", headers=headers)
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    policy = html.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in policy and "script" not in policy
    assert "舆情回应成效周报" in html.text and "化工厂异味扰民" in html.text

    pdf = client.get(f"{URL}&format=pdf", headers=headers)
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert 'filename="yuqing-weekly-2026-W47.pdf"' in pdf.headers["content-disposition"]


@pytest.mark.parametrize(
    ("query", "detail"),
    [("week=2026-48", "ISO week such as 2026-W48"), ("week=2099-W01", "has not begun")],
)
def test_bad_weeks_are_422(
    client: TestClient, tokens: dict[str, str], query: str, detail: str
) -> None:
    response = client.get(f"/api/reports/weekly?{query}", headers=bearer(tokens["press1"]))
    assert response.status_code == 422
    assert detail in response.json()["detail"]


def test_unknown_format_is_422(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get(f"{URL}&format=docx", headers=bearer(tokens["press1"]))
    assert response.status_code == 422


def test_an_archived_week_is_served_as_generated(
    client: TestClient,
    tokens: dict[str, str],
    seeded: None,
    session: Session,
    deadlines: DeadlineCalculator,
    options: ReportOptions,
) -> None:
    light = dataclasses.replace(
        options, config=options.config.model_copy(update={"archive_formats": ("json",)})
    )
    assert generate_due_reports(session, AS_OF, light) == [("2026-W47", "json")]
    session.commit()
    # A late item changes the live figures, not the archived report.
    add_alert(session, deadlines, "LATE", "water", "high", AS_OF.replace(day=18))
    session.commit()

    headers = bearer(tokens["leader1"])
    assert client.get(URL, headers=headers).json()["alerts"] == 8
    listing = client.get("/api/reports", headers=headers).json()
    assert [(r["week"], r["format"]) for r in listing] == [("2026-W47", "json")]
    assert listing[0]["url"] == "/api/reports/weekly?week=2026-W47&format=json"
    assert listing[0]["bytes"] > 100
    # A format not archived is generated now, with the late item's department.
    assert "区水务局" in client.get(f"{URL}&format=html", headers=headers).text
