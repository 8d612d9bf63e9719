"""The event's spread over time as bars of an inline SVG, laid out here and drawn by the
template: no chart library, no script, nothing fetched from elsewhere.

Hours without posts are kept as empty bars (a gap is information: the event went quiet);
a long event is shown per day so the bars stay readable on a phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from responders.web.schemas import TimelinePoint

WIDTH, HEIGHT = 640, 200
LEFT, BOTTOM, TOP = 36, 24, 10
MAX_BARS = 72


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    posts: int
    sources: int
    label: str  # when, local time


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # (y, posts) on the axis
    labels: list[tuple[float, str]]  # (x, text) under the bars
    unit: str  # 小时 or 天
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: int = HEIGHT - BOTTOM


def _buckets(
    points: list[TimelinePoint], tz: ZoneInfo
) -> tuple[list[tuple[datetime, int, int]], str]:
    """(start, posts, sources) per hour, or per day when there would be too many hours."""
    first, last = points[0].hour, points[-1].hour
    hours = int((last - first).total_seconds() // 3600) + 1
    if hours <= MAX_BARS:
        by_hour = {p.hour: p for p in points}
        starts = [first + timedelta(hours=i) for i in range(hours)]
        empty = TimelinePoint(hour=first, posts=0, sources=0)
        rows = [(s, by_hour.get(s, empty).posts, by_hour.get(s, empty).sources) for s in starts]
        return rows, "小时"
    days: dict[datetime, list[int]] = {}
    for p in points:
        day = p.hour.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        counts = days.setdefault(day, [0, 0])
        counts[0] += p.posts
        counts[1] = max(counts[1], p.sources)  # distinct per day is unknown: the busiest hour
    first_day, last_day = min(days), max(days)
    span = (last_day.date() - first_day.date()).days + 1
    starts = [first_day + timedelta(days=i) for i in range(span)]
    return [(s, *days.get(s, [0, 0])) for s in starts], "天"


def _nice_max(value: int) -> int:
    """The axis top: 1, 2, 5, 10, 20, 50, … at or above `value`."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def timeline_chart(points: list[TimelinePoint], tz: ZoneInfo) -> Chart | None:
    """Bars of posts per hour (or day); None for an event without posts."""
    if not points:
        return None
    rows, unit = _buckets(points, tz)
    top = _nice_max(max(posts for _, posts, _ in rows))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / len(rows)
    fmt = "%m-%d %H:00" if unit == "小时" else "%m-%d"
    bars = []
    for i, (start, posts, sources) in enumerate(rows):
        h = plot_h * posts / top
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * 0.1, 1),
                y=round(HEIGHT - BOTTOM - h, 1),
                width=round(max(slot * 0.8, 1), 1),
                height=round(h, 1),
                posts=posts,
                sources=sources,
                label=start.astimezone(tz).strftime(fmt),
            )
        )
    every = max(1, len(rows) // 6)
    labels = [(b.x + b.width / 2, b.label[-5:]) for b in bars[::every]]
    marks = (0, top // 2, top) if top % 2 == 0 else (0, top)
    ticks = [(HEIGHT - BOTTOM - plot_h * n / top, n) for n in marks]
    return Chart(bars, [(round(y, 1), n) for y, n in ticks], labels, unit)
