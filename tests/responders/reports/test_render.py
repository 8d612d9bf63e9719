"""The report as HTML, PDF and JSON: the same figures in each, a sensible empty week,
crawled text escaped, and exactly DESIGN's JSON fields."""

from __future__ import annotations

import io
import json
import re
from html import unescape
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy.orm import Session

from responders.deadlines import DeadlineCalculator
from responders.reports import render
from responders.reports.config import ReportOptions
from responders.reports.weekly import WeeklyReport, build_weekly
from tests.pipeline.processes import yuqing
from tests.responders.reports.conftest import AS_OF, WEEK, add_alert, seed_fixture_week

#: DESIGN "Weekly report as JSON".
TOP_FIELDS = {
    "week",
    "alerts",
    "by_severity",
    "ack_on_time_rate",
    "response_on_time_rate",
    "time_to_ack_seconds",
    "time_to_respond_seconds",
    "overdue",
    "departments",
    "named",
}
DEPARTMENT_FIELDS = {
    "id",
    "alerts",
    "ack_on_time_rate",
    "response_on_time_rate",
    "time_to_respond_seconds",
    "overdue",
}


@pytest.fixture
def report(session: Session, deadlines: DeadlineCalculator, options: ReportOptions) -> WeeklyReport:
    seed_fixture_week(session, deadlines)
    return build_weekly(session, WEEK, options, AS_OF)


@pytest.fixture
def empty(session: Session, options: ReportOptions) -> WeeklyReport:
    return build_weekly(session, WEEK, options, AS_OF)


def pdf_text(content: bytes) -> str:
    """The PDF's text without whitespace (line breaks and layout differ from HTML)."""
    assert content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(content))
    return re.sub(r"\s+", "", "".join(page.extract_text() or "" for page in reader.pages))


def html_figures(html: str) -> dict[str, str]:
    return {k: unescape(v).strip() for k, v in re.findall(r'data-figure="(\w+)">([^<]*)<', html)}


def test_html_shows_the_figures(report: WeeklyReport) -> None:
    html = render.render_html(report)
    assert html_figures(html) == {
        "alerts": "8",
        "ack_on_time_rate": "71.4%",
        "response_on_time_rate": "57.1%",
        "time_to_ack_median": "1小时",
        "time_to_ack_p90": "P90 3小时48分",
        "time_to_respond_median": "15小时",
        "time_to_respond_p90": "P90 1天2小时",
        "overdue": "3",
        "effect_before": "3",
        "effect_after": "1",
    }
    assert html.index('data-department="education"') < html.index('data-department="housing"')
    for text in ("回应按时率 33.3%，低于 80.0%", "逾期未回应：较大 2 件", "附录：指标说明"):
        assert text in html
    assert html.count("<svg") >= 6  # severity, sentiment, departments, topics, effect, events


def test_pdf_has_the_same_figures_as_the_html(report: WeeklyReport) -> None:
    html = render.render_html(report)
    text = pdf_text(render.render_pdf(report))
    for name, value in html_figures(html).items():
        assert re.sub(r"\s+", "", value) in text, name
    for d in report.departments:
        row = f"{d.rank}{d.name}{d.tally.alerts}{render.percent(d.tally.ack_on_time_rate)}"
        assert row in text
    for named in report.named:
        for reason in named.reasons:
            assert re.sub(r"\s+", "", reason.text) in text
    assert "化工厂异味扰民" in text  # the top event, in CJK glyphs that extract back


def test_an_empty_week_renders_a_sensible_report(empty: WeeklyReport) -> None:
    html = render.render_html(empty)
    figures = html_figures(html)
    assert figures["alerts"] == "0"
    assert figures["response_on_time_rate"] == "—"
    assert figures["time_to_respond_median"] == "—"
    for message in ("本周没有预警", "本周没有单位收到预警", "本周没有需要通报的单位"):
        assert message in html
    text = pdf_text(render.render_pdf(empty))
    assert "本周没有预警" in text and "本周没有需要通报的单位" in text
    data = json.loads(render.render_json(empty))
    assert data["alerts"] == 0 and data["response_on_time_rate"] is None


def test_json_has_exactly_the_design_fields(report: WeeklyReport) -> None:
    data = json.loads(render.render(report, "json"))
    assert set(data) == TOP_FIELDS
    assert (
        set(data["time_to_ack_seconds"])
        == set(data["time_to_respond_seconds"])
        == {
            "median",
            "p90",
        }
    )
    assert all(set(d) == DEPARTMENT_FIELDS for d in data["departments"])
    assert all(set(d["time_to_respond_seconds"]) == {"median"} for d in data["departments"])
    assert all(set(n) == {"id", "reasons"} for n in data["named"])


def test_crawled_text_is_escaped_in_html_and_charts(
    session: Session, deadlines: DeadlineCalculator, options: ReportOptions
) -> None:
    from tests.responders.conftest import new_event

    event = new_event(session, "ev-x", at=AS_OF.replace(day=17))
    event.title = '<img src=x onerror="alert(1)">事件'
    add_alert(
        session,
        deadlines,
        "X1",
        "water",
        "high",
        AS_OF.replace(day=17),
        event_id="ev-x",
        topic="<script>alert(1)</script>",
    )
    session.commit()
    html = render.render_html(build_weekly(session, WEEK, options, AS_OF))
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x" in html


def test_unknown_format_is_refused(empty: WeeklyReport) -> None:
    with pytest.raises(ValueError, match="unknown format 'xlsx'"):
        render.render(empty, "xlsx")


def test_report_command(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "w47.json"
    done = yuqing(
        env, "report", "weekly", "--week", "2026-W47", "--format", "json", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(out.read_text(encoding="utf-8"))["week"] == "2026-W47"
    assert b"weekly report 2026-W47 (json" in done.stderr
    bad = yuqing(env, "report", "weekly", "--week", "W47", "--out", str(out))
    assert bad.returncode == 2 and b"--week: expected an ISO week" in bad.stderr
    no_schema = {**env, "YUQING_DATABASE_URL": f"sqlite:///{tmp_path}/empty.sqlite3"}
    empty = yuqing(no_schema, "report", "weekly", "--out", str(out))
    assert empty.returncode == 2 and b"run `yuqing db upgrade`" in empty.stderr
