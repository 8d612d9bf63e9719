"""Chinese date formats into aware UTC (source time zone, default Asia/Shanghai)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crawlers.dates import parse_date

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-5-26 11:27:05", "2018-05-26T03:27:05"),
        ("2018年5月26日", "2018-05-25T16:00:00"),
        ("2018年05月26日 11时27分", "2018-05-26T03:27:00"),
        ("2018/05/26 11:27", "2018-05-26T03:27:00"),
        ("发表于 2018-5-26 11:27:05 | 来源：区政府", "2018-05-26T03:27:05"),
        ("05-26 11:27", "2026-05-26T03:27:00"),
        ("12-30 10:00", "2025-12-30T02:00:00"),  # a future month-day is last year's
        ("5月26日", "2026-05-25T16:00:00"),
        ("3小时前", "2026-11-27T01:00:00"),
        ("半小时前", "2026-11-27T03:30:00"),
        ("5分钟前", "2026-11-27T03:55:00"),
        ("2天前", "2026-11-25T04:00:00"),
        ("昨天 10:20", "2026-11-26T02:20:00"),
        ("前天 08:00", "2026-11-25T00:00:00"),
        ("今天 09:15", "2026-11-27T01:15:00"),
        ("刚刚", "2026-11-27T04:00:00"),
        ("10:20", "2026-11-27T02:20:00"),
        ("Sat, 26 May 2018 03:27:05 GMT", "2018-05-26T03:27:05"),
        ("Sat May 26 11:27:05 +0800 2018", "2018-05-26T03:27:05"),
        ("2018-05-26T11:27:05+08:00", "2018-05-26T03:27:05"),
        ("2018-05-26T03:27:05Z", "2018-05-26T03:27:05"),
        ("1527305225", "2018-05-26T03:27:05"),
        ("1527305225000", "2018-05-26T03:27:05"),
    ],
)
def test_formats(text: str, expected: str) -> None:
    found = parse_date(text, now=NOW)
    assert found is not None and found.tzinfo is not None
    assert found.astimezone(UTC).replace(tzinfo=None).isoformat() == expected


@pytest.mark.parametrize("text", ["", "不详", "2018-13-45", "第5期", None, "Mon"])
def test_no_date_is_none_not_an_error(text: str | None) -> None:
    assert parse_date(text, now=NOW) is None


def test_source_time_zone() -> None:
    found = parse_date("2018-5-26 11:27", ZoneInfo("Asia/Urumqi"), now=NOW)
    assert found.isoformat() == "2018-05-26T05:27:00+00:00"
