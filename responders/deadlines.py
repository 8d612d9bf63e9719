"""Ack (签收) and response (回应) due times per severity (DESIGN: Severity and deadlines).

Figures come from `config/sla.yaml`; working days from the PRC public-holiday calendar:

- years `chinese-calendar` knows: its holidays and make-up working days (调休);
- `config/holidays.yaml`: the district adds the State Council's schedule for a year the
  package does not know yet, or changes single days of a year it does (a listed year
  counts as known);
- any other year: the statutory holidays (元旦, 春节 eve to day 3, 清明, 劳动节 May 1–2,
  端午, 中秋, 国庆 Oct 1–3, lunar and solar-term dates computed) and weekends, no make-up
  days, with a warning in the log until the schedule is added.

N working days from a time inside office hours end at the same clock time on the Nth
following working day; from outside them counting starts at the next opening. Due times
depend only on severity, the time the alert was raised and the config, so a severity
change recomputes them with `DeadlineCalculator.due` from the original raise time.
A computation never fails: a calendar source that cannot answer falls back to weekends.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

import chinese_calendar
from lunardate import LunarDate
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import config as config_files
from pipeline.config import SEVERITIES, Deadline, SlaFile, parse_duration
from pipeline.settings import Settings

log = logging.getLogger("yuqing.deadlines")

HOLIDAYS_FILE = "holidays.yaml"
ONE_DAY = dt.timedelta(days=1)


# ------------------------------------------------------------------ config/holidays.yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Days(_Strict):
    """One day, or the days from `date` to `until` inclusive, under one name."""

    name: str = Field(min_length=1)
    date: dt.date
    until: dt.date | None = None

    @model_validator(mode="after")
    def _order(self) -> Days:
        if self.until is not None and self.until < self.date:
            raise ValueError("until must not be before date")
        return self

    def dates(self) -> list[dt.date]:
        last = self.until or self.date
        return [self.date + ONE_DAY * i for i in range((last - self.date).days + 1)]


class YearSchedule(_Strict):
    holidays: list[Days] = Field(default_factory=list, description="days off (放假)")
    workdays: list[Days] = Field(
        default_factory=list, description="make-up working days (调休上班)"
    )


class HolidaysFile(_Strict):
    """`config/holidays.yaml`: the State Council's schedule per year, or changes to it."""

    years: dict[int, YearSchedule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> HolidaysFile:
        for year, schedule in self.years.items():
            off = {d for days in schedule.holidays for d in days.dates()}
            on = {d for days in schedule.workdays for d in days.dates()}
            stray = sorted(d for d in off | on if d.year != year)
            if stray:
                raise ValueError(f"{year}: {stray[0]} is not in {year}")
            both = sorted(off & on)
            if both:
                raise ValueError(f"{year}: {both[0]} is both a holiday and a working day")
        return self


# ------------------------------------------------------------------ working-day calendar


def statutory_holidays(year: int) -> dict[dt.date, str]:
    """The statutory days off of `year` (全国年节及纪念日放假办法, 2025), without 调休."""
    spring = LunarDate(year, 1, 1).to_solar_date()
    qingming = next(
        day
        for day, term in chinese_calendar.get_solar_terms(dt.date(year, 4, 1), dt.date(year, 4, 30))
        if term == "清明"
    )
    days = {dt.date(year, 1, 1): "元旦", qingming: "清明"}
    days |= {spring + ONE_DAY * i: "春节" for i in range(-1, 3)}
    days |= {dt.date(year, 5, d): "劳动节" for d in (1, 2)}
    days[LunarDate(year, 5, 5).to_solar_date()] = "端午节"
    days[LunarDate(year, 8, 15).to_solar_date()] = "中秋节"
    days |= {dt.date(year, 10, d): "国庆节" for d in (1, 2, 3)}
    return days


@dataclass(frozen=True)
class _Year:
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]
    source: str  # "package", "holidays.yaml", "package+holidays.yaml", "statutory", "weekends"


class WorkCalendar:
    """Which days are working days: package data, then holidays.yaml, else the fallback."""

    def __init__(self, overrides: HolidaysFile | None = None) -> None:
        self.overrides = overrides or HolidaysFile()
        self._years: dict[int, _Year] = {}

    @cached_property
    def _package_years(self) -> range:
        years = [d.year for d in chinese_calendar.holidays]
        return range(min(years), max(years) + 1)

    def _package(self, year: int) -> tuple[set[dt.date], set[dt.date]]:
        off = {d for d in chinese_calendar.holidays if d.year == year}
        on = {d for d in chinese_calendar.workdays if d.year == year}
        return off, on

    def _resolve(self, year: int) -> _Year:
        schedule = self.overrides.years.get(year)
        if year in self._package_years:
            off, on = self._package(year)
            sources = ["package"]
        elif schedule is not None:
            off, on, sources = set(), set(), []
        else:
            return self._fallback(year)
        if schedule is not None:
            add_off = {d for days in schedule.holidays for d in days.dates()}
            add_on = {d for days in schedule.workdays for d in days.dates()}
            off = (off - add_on) | add_off
            on = (on - add_off) | add_on
            sources.append(HOLIDAYS_FILE)
        return _Year(frozenset(off), frozenset(on), "+".join(sources))

    def _fallback(self, year: int) -> _Year:
        try:
            off = frozenset(statutory_holidays(year))
        except Exception:  # a lunar table ends at 2099: weekends alone beat no answer
            log.exception("cannot compute the statutory holidays of %d; counting weekends", year)
            return _Year(frozenset(), frozenset(), "weekends")
        log.warning(
            "no holiday schedule for %d (chinese-calendar knows %d-%d): counting statutory "
            "holidays and weekends without make-up working days; add the State Council's "
            "schedule to %s",
            year,
            self._package_years.start,
            self._package_years.stop - 1,
            HOLIDAYS_FILE,
        )
        return _Year(off, frozenset(), "statutory")

    def _year(self, year: int) -> _Year:
        if year not in self._years:
            self._years[year] = self._resolve(year)
        return self._years[year]

    def source(self, year: int) -> str:
        """Where the year's schedule comes from; `statutory` or `weekends` means missing."""
        return self._year(year).source

    def schedule_missing(self, year: int) -> bool:
        """True while neither the package nor holidays.yaml has the year (admin warning)."""
        return self.source(year) in ("statutory", "weekends")

    def is_working_day(self, day: dt.date) -> bool:
        year = self._year(day.year)
        if day in year.workdays:
            return True
        return day not in year.holidays and day.weekday() < 5

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day after `day`."""
        day += ONE_DAY
        while not self.is_working_day(day):
            day += ONE_DAY
        return day


# ------------------------------------------------------------------ due times


@dataclass(frozen=True)
class DueTimes:
    ack_due: dt.datetime
    response_due: dt.datetime
    press_conference_due: dt.datetime | None = None

    def as_json(self) -> dict[str, str]:
        """ISO 8601 in the SLA time zone, to the second (the `yuqing sla due` output)."""
        out = {
            "ack_due": self.ack_due.isoformat(timespec="seconds"),
            "response_due": self.response_due.isoformat(timespec="seconds"),
        }
        if self.press_conference_due is not None:
            out["press_conference_due"] = self.press_conference_due.isoformat(timespec="seconds")
        return out


class DeadlineCalculator:
    """Due times under one SLA config and one working-day calendar."""

    def __init__(self, sla: SlaFile, calendar: WorkCalendar | None = None) -> None:
        self.sla = sla
        self.calendar = calendar or WorkCalendar()
        self.tz = ZoneInfo(sla.timezone)
        self._recent: dict[tuple[str, dt.datetime, dt.tzinfo], DueTimes] = {}

    def due(self, severity: str, raised_at: dt.datetime) -> DueTimes:
        """Due times of an alert of `severity` raised at `raised_at` (aware).

        Call it again with the original `raised_at` when the severity changes. Results
        are remembered: the responder raises a batch's alerts all at one time."""
        if raised_at.tzinfo is None:
            raise ValueError("raised_at must be timezone-aware")
        key = (severity, raised_at, raised_at.tzinfo)
        due = self._recent.get(key)
        if due is None:
            due = self._due(severity, raised_at)
            if len(self._recent) >= 256:
                self._recent.clear()
            self._recent[key] = due
        return due

    def _due(self, severity: str, raised_at: dt.datetime) -> DueTimes:
        rule = self.sla.severities.get(severity)  # type: ignore[call-overload]
        if rule is None:
            raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}")
        response = self.deadline(rule.response, raised_at)
        ack = self.deadline(rule.ack, raised_at)
        if rule.ack.not_after_response:
            ack = min(ack, response)
        press = None
        if rule.press_conference is not None:
            press = self.deadline(rule.press_conference, raised_at)
        return DueTimes(ack, response, press)

    def deadline(self, rule: Deadline, start: dt.datetime) -> dt.datetime:
        """When `rule` ends for something that started at `start`, in the SLA time zone."""
        if rule.clock == "calendar":
            return (start.astimezone(dt.UTC) + rule.calendar_delta()).astimezone(self.tz)
        amount, unit = parse_duration(rule.within)
        if unit == "d":
            return self.add_working_days(start, int(amount))
        return self.add_office_time(start, rule.calendar_delta())

    # Office hours ------------------------------------------------------------------

    def _at(self, day: dt.date, clock: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, clock, self.tz)

    def in_office_hours(self, when: dt.datetime) -> bool:
        hours = self.sla.office_hours
        local = when.astimezone(self.tz)
        return (
            self.calendar.is_working_day(local.date()) and hours.start <= local.time() < hours.end
        )

    def next_opening(self, when: dt.datetime) -> dt.datetime:
        """The first opening of the office at or after `when`."""
        local = when.astimezone(self.tz)
        day = local.date()
        if not (self.calendar.is_working_day(day) and local.time() <= self.sla.office_hours.start):
            day = self.calendar.next_working_day(day)
        return self._at(day, self.sla.office_hours.start)

    def _counting_start(self, when: dt.datetime) -> dt.datetime:
        local = when.astimezone(self.tz)
        return local if self.in_office_hours(local) else self.next_opening(local)

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        """Same clock time on the `days`th following working day, counted from `start`
        or, outside office hours, from the next opening."""
        begin = self._counting_start(start)
        day = begin.date()
        for _ in range(days):
            day = self.calendar.next_working_day(day)
        return self._at(day, begin.time())

    def counts_office_time(self, severity: str, deadline: str) -> bool:
        """Whether `deadline` (`ack`, `response`, `press_conference`) of `severity` is
        counted on the working clock (office hours of working days)."""
        rule = self.sla.severities.get(severity)  # type: ignore[call-overload]
        found = getattr(rule, deadline, None) if rule is not None else None
        return found is not None and found.clock == "working"

    def office_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Office time from `start` to `end` (zero when `end` comes first)."""
        total = dt.timedelta(0)
        at = self._counting_start(start)
        while at < end:
            closing = self._at(at.date(), self.sla.office_hours.end)
            total += min(closing, end) - at
            at = self.next_opening(closing)
        return total

    def add_office_time(self, start: dt.datetime, span: dt.timedelta) -> dt.datetime:
        """`span` of office time (working clock with hours or minutes) from `start`."""
        at = self._counting_start(start)
        while True:
            closing = self._at(at.date(), self.sla.office_hours.end)
            if at + span <= closing:
                return at + span
            span -= closing - at
            at = self.next_opening(closing)


def load_holidays(settings: Settings) -> HolidaysFile:
    """`holidays.yaml` of the config directory; an absent file adds nothing."""
    if not (settings.config_dir / HOLIDAYS_FILE).exists():
        return HolidaysFile()
    return config_files.load_file(settings.config_dir, HOLIDAYS_FILE, HolidaysFile)


def load_calculator(settings: Settings) -> DeadlineCalculator:
    """The calculator for the current config; ConfigError names file, key and problem."""
    return DeadlineCalculator(config_files.sla(settings), WorkCalendar(load_holidays(settings)))


def parse_time(text: str, tz: dt.tzinfo) -> dt.datetime:
    """ISO 8601 date or time; without an offset it is in `tz` (Asia/Shanghai)."""
    value = dt.datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=tz) if value.tzinfo is None else value
