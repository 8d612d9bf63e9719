"""Dates as Chinese sites write them, into aware UTC.

Government portals, forums and social timelines use a dozen spellings: `2018-5-26
11:27:05`, `2018/05/26`, `2018年5月26日 11时27分`, `05-26 11:27` (this year), `5月26日`,
`3小时前`, `半小时前`, `昨天 10:20`, `前天`, `刚刚`, RFC 822 in feeds, ISO 8601 in
Atom, Weibo's `Sat May 26 11:27:05 +0800 2018`, epoch seconds or milliseconds in JSON.
A time without offset is in the source's time zone (default Asia/Shanghai). A date
found inside noise ("发表于 2018-5-26 11:27:05 | 来源：…") is found; text with no date
gives None, never an exception.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

_TIME = r"(?:\s*T?\s*(\d{1,2})\s*[:：时点]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2})(?:\.\d+)?)?\s*秒?)?"
_OFFSET = r"\s*(Z|[+-]\d{2}:?\d{2})?"
# 2018-5-26, 2018/05/26, 2018.05.26, 2018年5月26日 (+ optional time, offset)
_FULL = re.compile(
    r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?" + _TIME + _OFFSET
)
# 05-26 11:27, 5月26日 10:20 (no year: this year, or last year if that would be future)
_SHORT = re.compile(
    r"(?<![\d/.-])(\d{1,2})\s*[-/月]\s*(\d{1,2})\s*[日号]?" + _TIME + r"(?![\d/.-])"
)
_RELATIVE = re.compile(
    r"(\d+|半|一|两|几)\s*(秒|分钟|分|小时|个小时|钟头|天|日|周|星期|个月|月)\s*[以之]?前"
)
_DAY_WORD = re.compile(r"(今天|昨天|前天)\s*" + _TIME)
_CLOCK_ONLY = re.compile(r"^\s*(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?\s*$")
_EPOCH = re.compile(r"^\s*(\d{10}|\d{13})\s*$")
_WEIBO = re.compile(
    r"[A-Z][a-z]{2} ([A-Z][a-z]{2}) (\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ([+-]\d{4}) (\d{4})"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_UNIT_SECONDS = {
    "秒": 1, "分钟": 60, "分": 60, "小时": 3600, "个小时": 3600, "钟头": 3600,
    "天": 86400, "日": 86400, "周": 7 * 86400, "星期": 7 * 86400, "个月": 30 * 86400,
    "月": 30 * 86400,
}  # fmt: skip
_NUMBER_WORDS = {"半": 0.5, "一": 1, "两": 2, "几": 3}


def _offset(text: str | None, tz: tzinfo) -> tzinfo:
    if not text:
        return tz
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return _fixed(sign * (int(digits[:2]) * 60 + int(digits[2:])))


def _fixed(minutes: int) -> tzinfo:
    from datetime import timezone

    return timezone(timedelta(minutes=minutes))


def _build(
    y: int, mo: int, d: int, hh: str | None, mm: str | None, ss: str | None, tz: tzinfo
) -> datetime | None:
    try:
        local = datetime(y, mo, d, int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=tz)
    except ValueError:
        return None
    return local.astimezone(UTC)


def parse_date(
    text: str | int | float | None, tz: tzinfo = SHANGHAI, now: datetime | None = None
) -> datetime | None:
    """The first date in `text` as aware UTC, or None when there is none.

    `now` (aware) anchors relative forms; default: the current time."""
    if text is None:
        return None
    if isinstance(text, int | float):
        return _epoch(float(text))
    text = str(text).strip().replace("\u3000", " ").replace("\xa0", " ")
    if not text:
        return None
    now = (now or datetime.now(UTC)).astimezone(tz)
    for parse in (_parse_epoch, _parse_weibo, _parse_rfc822, _parse_full):
        found = parse(text, tz)
        if found is not None:
            return found
    return _parse_relative(text, tz, now)


def _epoch(value: float) -> datetime | None:
    if value > 1e12:
        value /= 1000
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_epoch(text: str, tz: tzinfo) -> datetime | None:
    m = _EPOCH.match(text)
    return _epoch(float(m.group(1))) if m else None


def _parse_weibo(text: str, tz: tzinfo) -> datetime | None:
    m = _WEIBO.search(text)
    if not m or m.group(1) not in _MONTHS:
        return None
    mon, d, hh, mm, ss, off, y = m.groups()
    return _build(int(y), _MONTHS[mon], int(d), hh, mm, ss, _offset(off[:3] + ":" + off[3:], tz))


def _parse_rfc822(text: str, tz: tzinfo) -> datetime | None:
    if not re.match(r"^(?:[A-Z][a-z]{2},\s*)?\d{1,2} [A-Z][a-z]{2} \d{4}", text):
        return None
    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _parse_full(text: str, tz: tzinfo) -> datetime | None:
    m = _FULL.search(text)
    if not m:
        return None
    y, mo, d, hh, mm, ss, off = m.groups()
    return _build(int(y), int(mo), int(d), hh, mm, ss, _offset(off, tz))


def _parse_relative(text: str, tz: tzinfo, now: datetime) -> datetime | None:
    if "刚刚" in text or "刚才" in text:
        return now.astimezone(UTC)
    m = _RELATIVE.search(text)
    if m:
        amount = _NUMBER_WORDS.get(m.group(1)) or float(m.group(1))
        return (now - timedelta(seconds=amount * _UNIT_SECONDS[m.group(2)])).astimezone(UTC)
    m = _DAY_WORD.search(text)
    if m:
        back = {"今天": 0, "昨天": 1, "前天": 2}[m.group(1)]
        day = now.date() - timedelta(days=back)
        return _build(day.year, day.month, day.day, m.group(2), m.group(3), m.group(4), tz)
    m = _CLOCK_ONLY.match(text)
    if m:  # "10:20" alone: today (forums show today's posts so)
        return _build(now.year, now.month, now.day, m.group(1), m.group(2), m.group(3), tz)
    m = _SHORT.search(text)
    if m:
        mo, d, hh, mm, ss = m.groups()
        return _this_year(int(mo), int(d), hh, mm, ss, tz, now)
    return None


def _this_year(
    mo: int, d: int, hh: str | None, mm: str | None, ss: str | None, tz: tzinfo, now: datetime
) -> datetime | None:
    """A month and day without year: this year, unless that is more than a day ahead."""
    try:
        date(now.year, mo, d)
    except ValueError:
        return None
    found = _build(now.year, mo, d, hh, mm, ss, tz)
    if found is not None and found > now.astimezone(UTC) + timedelta(days=1):
        found = _build(now.year - 1, mo, d, hh, mm, ss, tz)
    return found
