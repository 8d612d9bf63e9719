"""Due times computed by hand against the 2026 State Council schedule (as chinese-calendar
1.11 has it) and the statutory fallback for 2027.

2026 calendar used below:
- 春节: Feb 15 (Sun)–23 (Mon) off; Feb 14 (Sat) and Feb 28 (Sat) are working days.
- 中秋: Sep 25 (Fri)–27 off, 国庆: Oct 1 (Thu)–7 off; Sep 20 (Sun) and Oct 10 (Sat) work.
- Nov 13 is a Friday.
2027 fallback: Jan 1 (Fri), 春节 eve to day 3 Feb 5 (Fri)–8 (Mon), 清明 Apr 5 (Mon),
May 1–2, 端午 Jun 9, 中秋 Sep 15, Oct 1–3; no make-up days.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from pydantic import ValidationError

from pipeline.config import Deadline, OfficeHours, SlaFile, load_file
from pipeline.settings import ConfigError, load_settings
from responders.deadlines import (
    DeadlineCalculator,
    WorkCalendar,
    load_calculator,
    parse_time,
    statutory_holidays,
)

REPO = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")
SLA = load_file(REPO / "config", "sla.yaml", SlaFile)


def at(text: str) -> dt.datetime:
    return parse_time(text, TZ)


def due(calculator: DeadlineCalculator, severity: str, raised: str) -> dict[str, str]:
    return calculator.due(severity, at(raised)).as_json()


@pytest.fixture
def calculator() -> DeadlineCalculator:
    return DeadlineCalculator(SLA, WorkCalendar())


def expect(ack: str, response: str, press: str | None = None) -> dict[str, str]:
    out = {"ack_due": f"{ack}+08:00", "response_due": f"{response}+08:00"}
    if press:
        out["press_conference_due"] = f"{press}+08:00"
    return out


CASES = [
    # Weekends and office-hour boundaries (low: ack 1, response 5 working days).
    pytest.param(
        "low",
        "2026-11-13T17:30",
        expect("2026-11-16T17:30:00", "2026-11-20T17:30:00"),
        id="friday-inside-hours-skips-weekend",
    ),
    pytest.param(
        "low",
        "2026-11-13T18:00",
        expect("2026-11-17T09:00:00", "2026-11-23T09:00:00"),
        id="at-closing-counts-from-monday-opening",
    ),
    pytest.param(
        "low",
        "2026-11-16T08:59",
        expect("2026-11-17T09:00:00", "2026-11-23T09:00:00"),
        id="before-opening-counts-from-that-opening",
    ),
    pytest.param(
        "low",
        "2026-11-14T11:00",
        expect("2026-11-17T09:00:00", "2026-11-23T09:00:00"),
        id="saturday-counts-from-monday-opening",
    ),
    # Spring Festival 2026.
    pytest.param(
        "low",
        "2026-02-13T10:00",
        expect("2026-02-14T10:00:00", "2026-02-27T10:00:00"),
        id="spring-festival-makeup-saturday-counts",
    ),
    pytest.param(
        "low",
        "2026-02-14T19:00",
        expect("2026-02-25T09:00:00", "2026-03-02T09:00:00"),
        id="spring-festival-after-hours-then-feb-28-makeup",
    ),
    # Mid-Autumn and National Day 2026.
    pytest.param(
        "low",
        "2026-09-19T11:00",
        expect("2026-09-21T09:00:00", "2026-09-28T09:00:00"),
        id="makeup-sunday-sep-20-opens-then-mid-autumn-skipped",
    ),
    pytest.param(
        "low",
        "2026-09-30T15:30",
        expect("2026-10-08T15:30:00", "2026-10-13T15:30:00"),
        id="national-day-skipped-oct-10-makeup-counts",
    ),
    pytest.param(
        "low",
        "2026-10-09T10:00",
        expect("2026-10-10T10:00:00", "2026-10-15T10:00:00"),
        id="national-day-makeup-saturday-is-next-working-day",
    ),
    # Medium: ack 1 working day but never after the 48 h calendar response.
    pytest.param(
        "medium",
        "2026-11-13T10:00",
        expect("2026-11-15T10:00:00", "2026-11-15T10:00:00"),
        id="medium-ack-capped-by-response",
    ),
    pytest.param(
        "medium",
        "2026-11-17T10:00",
        expect("2026-11-18T10:00:00", "2026-11-19T10:00:00"),
        id="medium-ack-one-working-day",
    ),
    pytest.param(
        "medium",
        "2026-09-30T17:00",
        expect("2026-10-02T17:00:00", "2026-10-02T17:00:00"),
        id="medium-over-national-day-capped",
    ),
    # Calendar clocks ignore weekends, holidays and office hours.
    pytest.param(
        "high",
        "2026-11-14T23:30",
        expect("2026-11-15T01:30:00", "2026-11-15T23:30:00"),
        id="high-calendar-hours-over-weekend-night",
    ),
    pytest.param(
        "critical",
        "2026-10-01T08:00",
        expect("2026-10-01T08:30:00", "2026-10-01T13:00:00", "2026-10-02T08:00:00"),
        id="critical-on-national-day-with-press-conference",
    ),
    # 2027: chinese-calendar does not know it; statutory fallback.
    pytest.param(
        "low",
        "2026-12-31T10:00",
        expect("2027-01-04T10:00:00", "2027-01-08T10:00:00"),
        id="into-2027-new-year-day-off",
    ),
    pytest.param(
        "low",
        "2027-02-04T10:00",
        expect("2027-02-09T10:00:00", "2027-02-15T10:00:00"),
        id="2027-spring-festival-eve-to-day-3",
    ),
    pytest.param(
        "low",
        "2027-04-02T14:00",
        expect("2027-04-06T14:00:00", "2027-04-12T14:00:00"),
        id="2027-qingming-from-solar-term",
    ),
]


@pytest.mark.parametrize(("severity", "raised", "expected"), CASES)
def test_due_times(
    calculator: DeadlineCalculator, severity: str, raised: str, expected: dict[str, str]
) -> None:
    assert due(calculator, severity, raised) == expected


def test_other_offsets_come_out_in_shanghai_time(calculator: DeadlineCalculator) -> None:
    # 02:00Z is 10:00 in Shanghai.
    assert due(calculator, "high", "2026-11-13T02:00:00Z") == expect(
        "2026-11-13T12:00:00", "2026-11-14T10:00:00"
    )


def test_severity_change_recomputes_from_raise_time(calculator: DeadlineCalculator) -> None:
    raised = at("2026-11-13T17:30")
    assert calculator.due("low", raised).ack_due == at("2026-11-16T17:30")
    raised_again = calculator.due("critical", raised)
    assert raised_again.ack_due == at("2026-11-13T18:00")
    assert raised_again.press_conference_due == at("2026-11-14T17:30")


def test_bad_arguments_raise(calculator: DeadlineCalculator) -> None:
    with pytest.raises(ValueError, match="unknown severity"):
        calculator.due("urgent", at("2026-11-13T10:00"))
    with pytest.raises(ValueError, match="aware"):
        calculator.due("low", dt.datetime(2026, 11, 13, 10))
    with pytest.raises(ValueError):
        parse_time("next tuesday", TZ)


def test_parse_time_defaults_to_shanghai() -> None:
    assert parse_time("2026-11-13", TZ) == dt.datetime(2026, 11, 13, tzinfo=TZ)
    assert parse_time("2026-11-13 10:00", TZ).utcoffset() == dt.timedelta(hours=8)


# ------------------------------------------------------------------ calendar sources


def test_statutory_2027() -> None:
    days = statutory_holidays(2027)
    expected = {
        "2027-01-01", "2027-02-05", "2027-02-06", "2027-02-07", "2027-02-08", "2027-04-05",
        "2027-05-01", "2027-05-02", "2027-06-09", "2027-09-15",
        "2027-10-01", "2027-10-02", "2027-10-03",
    }  # fmt: skip
    assert {d.isoformat() for d in days} == expected
    assert days[dt.date(2027, 2, 5)] == "春节" and days[dt.date(2027, 9, 15)] == "中秋节"


@pytest.mark.parametrize("year", [2025, 2026])
def test_statutory_days_are_off_in_the_official_schedule(year: int) -> None:
    """The fallback's lunar and solar-term dates agree with real schedules."""
    official = {d for d in chinese_calendar.holidays if d.year == year}
    assert set(statutory_holidays(year)) <= official


def test_unknown_year_warns_once_and_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    calendar = WorkCalendar()
    with caplog.at_level(logging.WARNING, logger="yuqing.deadlines"):
        for day in (1, 4, 5):
            calendar.is_working_day(dt.date(2027, 1, day))
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1 and "holidays.yaml" in warnings[0].getMessage()
    assert calendar.schedule_missing(2027) and not calendar.schedule_missing(2026)


def test_beyond_lunar_tables_weekends_still_count() -> None:
    calendar = WorkCalendar()
    assert calendar.is_working_day(dt.date(2100, 1, 1))  # a Friday
    assert not calendar.is_working_day(dt.date(2100, 1, 2))
    assert calendar.source(2100) == "weekends"


HOLIDAYS_YAML = """\
years:
  2026:
    holidays:
      - {name: 区庆, date: 2026-11-16}
    workdays:
      - {name: 调休, date: 2026-11-21}
  2027:
    holidays:
      - {name: 春节, date: 2027-02-05, until: 2027-02-11}
    workdays:
      - {name: 春节, date: 2027-02-20}
"""


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config directory with the repo's sla.yaml; tests write holidays.yaml into it."""
    directory = tmp_path / "config"
    directory.mkdir()
    (directory / "sla.yaml").write_bytes((REPO / "config" / "sla.yaml").read_bytes())
    monkeypatch.setenv("YUQING_CONFIG_DIR", str(directory))
    return directory


def test_holidays_yaml_adds_day_off_and_makeup_day(
    config_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (config_dir / "holidays.yaml").write_text(HOLIDAYS_YAML, encoding="utf-8")
    calculator = load_calculator(load_settings())
    # Mon Nov 16 off, Sat Nov 21 a working day.
    assert due(calculator, "low", "2026-11-13T10:00") == expect(
        "2026-11-17T10:00:00", "2026-11-21T10:00:00"
    )
    # 2027 from the file: Feb 5–11 off, so the statutory fallback is not used.
    with caplog.at_level(logging.WARNING, logger="yuqing.deadlines"):
        assert due(calculator, "low", "2027-02-04T10:00") == expect(
            "2027-02-12T10:00:00", "2027-02-18T10:00:00"
        )
    assert not caplog.records
    assert calculator.calendar.source(2026) == "package+holidays.yaml"
    assert calculator.calendar.source(2027) == "holidays.yaml"


def test_without_holidays_yaml_the_package_alone(config_dir: Path) -> None:
    calculator = load_calculator(load_settings())
    assert calculator.calendar.source(2026) == "package"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("years: {2027: {holidays: [{name: x, date: 2027-02-05, until: 2027-02-01}]}}", "until"),
        ("years: {2027: {workdays: [{name: x, date: 2026-12-31}]}}", "not in 2027"),
        (
            "years: {2027: {holidays: [{name: x, date: 2027-02-20}],"
            " workdays: [{name: y, date: 2027-02-20}]}}",
            "both a holiday and a working day",
        ),
        ("years: {2027: {holidays: [{date: 2027-02-20}]}}", "name"),
    ],
)
def test_holidays_yaml_errors_name_the_problem(config_dir: Path, text: str, problem: str) -> None:
    (config_dir / "holidays.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_calculator(load_settings())
    assert "holidays.yaml" in str(err.value) and problem in str(err.value)


# ------------------------------------------------------------------ office hours


def with_rules(**changes: object) -> DeadlineCalculator:
    return DeadlineCalculator(SLA.model_copy(update=changes), WorkCalendar())


def test_office_hours_are_configurable() -> None:
    calculator = with_rules(office_hours=OfficeHours(start=dt.time(8, 30), end=dt.time(17, 30)))
    assert due(calculator, "low", "2026-11-16T08:45")["ack_due"] == "2026-11-17T08:45:00+08:00"
    assert due(calculator, "low", "2026-11-16T17:45")["ack_due"] == "2026-11-18T08:30:00+08:00"


def test_working_hours_run_through_office_time_only() -> None:
    low = SLA.severities["low"].model_copy(update={"ack": Deadline(within="4h", clock="working")})
    calculator = with_rules(severities={**SLA.severities, "low": low})
    # Fri 16:00 + 2 h to closing, then 2 h from Monday's opening.
    assert due(calculator, "low", "2026-11-13T16:00")["ack_due"] == "2026-11-16T11:00:00+08:00"
    # Exactly to closing stays on that day.
    assert due(calculator, "low", "2026-11-13T14:00")["ack_due"] == "2026-11-13T18:00:00+08:00"
    # Before National Day: Sep 30 17:00 + 1 h, then Oct 8 09:00 + 3 h.
    assert due(calculator, "low", "2026-09-30T17:00")["ack_due"] == "2026-10-08T12:00:00+08:00"


def test_fractional_working_days_are_rejected() -> None:
    with pytest.raises(ValidationError, match="whole number"):
        Deadline(within="1.5d", clock="working")
    assert Deadline(within="1.5d", clock="calendar").calendar_delta() == dt.timedelta(hours=36)


@pytest.mark.parametrize(
    "start",
    ["2026-11-13T16:00", "2026-11-14T11:00", "2026-09-30T17:00", "2026-02-13T20:00"],
)
@pytest.mark.parametrize("hours", [0.5, 2, 9, 13.25, 45])
def test_office_time_between_undoes_adding_it(
    calculator: DeadlineCalculator, start: str, hours: float
) -> None:
    """Across a weekend, National Day and Spring Festival (with their make-up days)."""
    span = dt.timedelta(hours=hours)
    assert (
        calculator.office_time_between(at(start), calculator.add_office_time(at(start), span))
        == span
    )


def test_office_time_between(calculator: DeadlineCalculator) -> None:
    # Fri 17:00 to Mon 17:00: one hour on Friday, eight on Monday.
    assert calculator.office_time_between(
        at("2026-11-20T17:00"), at("2026-11-23T17:00")
    ) == dt.timedelta(hours=9)
    # Within a weekend, or backwards: none.
    assert calculator.office_time_between(
        at("2026-11-21T10:00"), at("2026-11-22T10:00")
    ) == dt.timedelta(0)
    assert calculator.office_time_between(
        at("2026-11-23T17:00"), at("2026-11-20T17:00")
    ) == dt.timedelta(0)
    assert calculator.counts_office_time("low", "ack")
    assert calculator.counts_office_time("medium", "ack")
    assert not calculator.counts_office_time("medium", "response")
    assert not calculator.counts_office_time("critical", "press_conference")
    assert not calculator.counts_office_time("high", "press_conference")  # none configured
