"""The fixture week's figures, worked out by hand from the table in conftest.py, on SQLite
and PostgreSQL; weeks and the schedule."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.orm import Session

from responders.deadlines import DeadlineCalculator
from responders.reports.archive import due_week
from responders.reports.config import ReportOptions
from responders.reports.weekly import IsoWeek, build_weekly
from tests.responders.conftest import T0
from tests.responders.reports.conftest import AS_OF, SHANGHAI, WEEK, H, seed_fixture_week


def test_fixture_week_figures_by_hand(
    db: Session, deadlines: DeadlineCalculator, options: ReportOptions
) -> None:
    seed_fixture_week(db, deadlines)
    report = build_weekly(db, WEEK, options, AS_OF)
    data = report.as_json()

    # E1 E2 E3 D1 D2 D3 H1 H2: E4 is dismissed, P1 last week, N1 next week.
    assert data["alerts"] == 8
    assert data["by_severity"] == {"critical": 2, "high": 4, "medium": 1, "low": 1}
    # Ack met: E1 E3 D1 D2 H1; late: E2 (3h > 2h), H2 (40m > 30m); D3 not due yet.
    assert data["ack_on_time_rate"] == round(5 / 7, 4)
    # Response met: E1 D1 D2 H1; late E2 (30h > 24h), H2 (6h > 5h); none E3; D3 not due.
    assert data["response_on_time_rate"] == round(4 / 7, 4)
    assert data["overdue"] == 3  # E2, E3, H2
    # Ack seconds sorted: 1200 1800 2400 3600 3600 10800 18000 → median 3600;
    # p90 at 6 × 0.9 = 5.4: 10800 + 0.4 × (18000 − 10800) = 13680.
    assert data["time_to_ack_seconds"] == {"median": 3600.0, "p90": 13680.0}
    # Response hours 4 6 10 20 23 30 → median 2.5: (10 + 20) / 2 h = 54000 s;
    # p90 at 5 × 0.9 = 4.5: (23 + 30) / 2 h = 95400 s.
    assert data["time_to_respond_seconds"] == {"median": 54000.0, "p90": 95400.0}

    # Ranked by response on-time rate: education 2/2, housing 1/2, environment 1/3.
    assert data["departments"] == [
        {
            "id": "education",
            "alerts": 3,
            "ack_on_time_rate": 1.0,
            "response_on_time_rate": 1.0,
            "time_to_respond_seconds": {"median": 54000.0},  # 10 h and 20 h
            "overdue": 0,
        },
        {
            "id": "housing",
            "alerts": 2,
            "ack_on_time_rate": 0.5,
            "response_on_time_rate": 0.5,
            "time_to_respond_seconds": {"median": 52200.0},  # 6 h and 23 h
            "overdue": 1,
        },
        {
            "id": "environment",
            "alerts": 3,
            "ack_on_time_rate": round(2 / 3, 4),
            "response_on_time_rate": round(1 / 3, 4),
            "time_to_respond_seconds": {"median": 61200.0},  # 4 h and 30 h
            "overdue": 2,
        },
    ]
    assert [(n["id"], [r["rule"] for r in n["reasons"]]) for n in data["named"]] == [
        ("education", ["transfer_rejections"]),
        ("housing", ["response_on_time_rate", "overdue"]),
        ("environment", ["response_on_time_rate", "overdue"]),
    ]
    housing = data["named"][1]["reasons"]
    assert housing[0]["text"] == "回应按时率 50.0%，低于 80.0%"
    assert housing[1]["text"] == "逾期未回应：特别重大/重大 1 件"
    assert data["named"][2]["reasons"][1]["text"] == "逾期未回应：较大 2 件"

    # Response effect: E1's event had 3 negative posts in the 24 h before its response
    # and 1 after (one reclassified neutral); E2's event has no posts.
    assert (report.effect.responses, report.effect.before, report.effect.after) == (2, 3, 1)
    assert report.effect.fell == 1
    assert report.effect.change == round((1 - 3) / 3, 4)

    # Previous week: P1 only, both deadlines met.
    previous = report.previous
    assert previous.tally.alerts == 1
    assert (previous.tally.ack_on_time_rate, previous.tally.response_on_time_rate) == (1.0, 1.0)
    assert previous.time_to_respond.median == 5 * 3600

    assert report.topics == [("教育", 3, 0), ("环境保护", 3, 1), ("未分类", 2, 0)]
    # Tuesday: E1 D1 negative, H1 unclassified; Friday: D3 positive.
    assert report.sentiment_by_day["negative"] == [0, 2, 1, 0, 0, 0, 0]
    assert report.sentiment_by_day["未分类"] == [0, 1, 0, 1, 0, 0, 0]
    assert report.sentiment_by_day["positive"][4] == 1

    top = report.events[0]
    assert [t.event.id for t in report.events] == ["ev-1", "ev-2"]
    assert top.posts_by_day == [1, 7, 1, 0, 0, 0, 0]  # Mon 13:00, Tue 09:00–17:00, Wed 15:00
    assert [(i.department, i.severity) for i in top.items] == [("区环保局", "特别重大/重大")]
    assert top.items[0].responded_at == T0 + 4 * H and top.items[0].closed_at is None
    assert (top.effect.before, top.effect.after) == (3, 1)


def test_empty_week_gives_zero_counts_and_null_rates(db: Session, options: ReportOptions) -> None:
    data = build_weekly(db, WEEK, options, AS_OF).as_json()
    assert data == {
        "week": "2026-W47",
        "alerts": 0,
        "by_severity": {"critical": 0, "high": 0, "medium": 0, "low": 0},
        "ack_on_time_rate": None,
        "response_on_time_rate": None,
        "time_to_ack_seconds": {"median": None, "p90": None},
        "time_to_respond_seconds": {"median": None, "p90": None},
        "overdue": 0,
        "departments": [],
        "named": [],
    }


def test_a_single_value_is_its_own_percentiles(
    db: Session, deadlines: DeadlineCalculator, options: ReportOptions
) -> None:
    from tests.responders.reports.conftest import add_alert

    add_alert(db, deadlines, "X", "water", "high", AS_OF - 6 * 24 * H, ack=H, respond=2 * H)
    db.commit()
    data = build_weekly(db, WEEK, options, AS_OF).as_json()
    assert data["time_to_respond_seconds"] == {"median": 7200.0, "p90": 7200.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-W48", IsoWeek(2026, 48)),
        ("2020-W53", IsoWeek(2020, 53)),
        (" 2027-W01 ", IsoWeek(2027, 1)),
    ],
)
def test_iso_weeks_parse(text: str, expected: IsoWeek) -> None:
    assert IsoWeek.parse(text) == expected


@pytest.mark.parametrize("text", ["2026-48", "2026-W54", "2026-W00", "2026-W5", "last week"])
def test_bad_iso_weeks_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="ISO week such as 2026-W48"):
        IsoWeek.parse(text)


def test_weeks_run_monday_to_monday_in_shanghai(options: ReportOptions) -> None:
    window = IsoWeek(2027, 1).window(SHANGHAI)
    assert window.start == datetime(2027, 1, 4, tzinfo=SHANGHAI)
    assert (window.end - window.start).days == 7
    assert IsoWeek(2027, 1).previous() == IsoWeek(2026, 53)
    sunday_night = datetime(2026, 11, 22, 23, 59, tzinfo=SHANGHAI)
    assert IsoWeek.before(sunday_night, SHANGHAI) == IsoWeek(2026, 46)


@pytest.mark.parametrize(
    ("now", "week"),
    [
        (datetime(2026, 11, 23, 7, 59, tzinfo=SHANGHAI), "2026-W46"),  # before Monday 08:00
        (datetime(2026, 11, 23, 8, 0, tzinfo=SHANGHAI), "2026-W47"),
        (datetime(2026, 11, 29, 23, 0, tzinfo=SHANGHAI), "2026-W47"),
    ],
)
def test_the_report_is_due_monday_0800_for_the_previous_week(
    options: ReportOptions, now: datetime, week: str
) -> None:
    assert str(due_week(now, options)) == week


def test_the_leader_overview_shows_the_report_figures(
    db: Session, deadlines: DeadlineCalculator, options: ReportOptions
) -> None:
    """The leader's page during the week and the report of that week, at the same moment,
    give every department the same counts and on-time rates (imported history included)."""
    from responders.web.pages.queries import overview

    seed_fixture_week(db, deadlines)
    sunday_night = datetime(2026, 11, 22, 23, 0, tzinfo=SHANGHAI)
    report = build_weekly(db, WEEK, options, sunday_night).as_json()
    lines = {line.department: line for line in overview(db, sunday_night, SHANGHAI)}
    expected = {
        d["id"]: (d["alerts"], d["ack_on_time_rate"], d["response_on_time_rate"])
        for d in report["departments"]
    }

    def rounded(rate: float | None) -> float | None:
        return None if rate is None else round(rate, 4)

    assert {
        dept: (line.raised, rounded(line.ack_rate), rounded(line.response_rate))
        for dept, line in lines.items()
        if line.raised
    } == expected
    assert expected["housing"] == (2, 0.5, 0.5)  # imported history only
