"""Charts of the report as inline SVG, drawn here rather than by a JavaScript library:
the report must render the same on a screen, in WeasyPrint's PDF and offline, with no
external asset. Every label is escaped (topics and titles come from crawled text).

Text takes the page's font (`font-family: inherit` in the report's CSS), so CJK labels
use the fonts the project installs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

AXIS = "#666"
GRID = "#ddd"
FONT = 11


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str


def nice_step(value: float) -> float:
    """The next 1, 2 or 5 × 10ⁿ at or above `value`: round axis steps."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def axis(peak: float) -> tuple[float, int]:
    """(step, number of steps) of a count axis reaching `peak`: whole-number gridlines."""
    step = max(nice_step(peak / 5), 1.0)
    return step, max(math.ceil(peak / step), 1)


def _number(value: float) -> str:
    return f"{value:g}" if value < 1e6 else f"{value:.3g}"


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = FONT) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="#333">'
        f"{escape(text)}</text>"
    )


def _rect(x: float, y: float, w: float, h: float, color: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
        f'fill="{color}"><title>{escape(tip)}</title></rect>'
    )


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts = []
    for s in series:
        parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{s.color}"/>')
        parts.append(_text(x + 14, y, s.name))
        x += 24 + FONT * len(s.name)
    return parts


def _svg(width: float, height: float, title: str, parts: list[str]) -> Markup:
    body = "".join(parts)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{body}</svg>'
    )


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = False,
    width: float = 640,
    height: float = 220,
) -> Markup:
    """Vertical bars per category: side by side, or stacked (a total per category)."""
    left, right, top, bottom = 40.0, 10.0, 24.0, 24.0
    plot_w, plot_h = width - left - right, height - top - bottom
    columns = [[s.values[i] or 0 for s in series] for i in range(len(categories))]
    peak = max((sum(c) if stacked else max(c, default=0) for c in columns), default=0)
    step, ticks = axis(peak)
    top_value = step * ticks
    parts = _axis_y(left, top, plot_w, plot_h, step, ticks)
    band = plot_w / max(len(categories), 1)
    bar_w = band * 0.7 / (1 if stacked else max(len(series), 1))
    for i, (category, values) in enumerate(zip(categories, columns, strict=True)):
        x0 = left + i * band + band * 0.15
        base = top + plot_h
        for j, (s, v) in enumerate(zip(series, values, strict=True)):
            h = plot_h * v / top_value
            tip = f"{category} {s.name}: {_number(v)}"
            if stacked:
                base -= h
                parts.append(_rect(x0, base, bar_w, h, s.color, tip))
            else:
                parts.append(_rect(x0 + j * bar_w, base - h, bar_w, h, s.color, tip))
        parts.append(_text(left + i * band + band / 2, height - 8, category, "middle"))
    parts += _legend(series, left, 14)
    return _svg(width, height, title, parts)


def _axis_y(
    left: float, top: float, plot_w: float, plot_h: float, step: float, ticks: int
) -> list[str]:
    parts = []
    for k in range(ticks + 1):
        value = step * k
        y = top + plot_h - plot_h * k / ticks
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID if k else AXIS}" stroke-width="1"/>'
        )
        parts.append(_text(left - 4, y + 4, _number(value), "end", FONT - 1))
    return parts


def hbar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    max_value: float | None = None,
    threshold: float | None = None,
    fmt: Callable[[float], str] = _number,
    width: float = 640,
    bar_h: float = 12.0,
) -> Markup:
    """Horizontal bars per label (one row per label, a bar per series): long department
    and topic names stay readable, and a threshold (the 80 % line) can be drawn."""
    label_w, right, top, row_gap = 150.0, 50.0, 24.0, 6.0
    row_h = bar_h * max(len(series), 1) + row_gap
    height = top + row_h * max(len(labels), 1) + 8
    plot_w = width - label_w - right
    values = [v for s in series for v in s.values if v is not None]
    step, ticks = axis(max(values, default=0))
    scale = max_value or step * ticks
    parts = [
        f'<line x1="{label_w:.1f}" y1="{top - 4:.1f}" x2="{label_w:.1f}" '
        f'y2="{height - 8:.1f}" stroke="{AXIS}"/>'
    ]
    for i, label in enumerate(labels):
        y0 = top + i * row_h
        parts.append(_text(label_w - 6, y0 + row_h / 2 + 2, label, "end"))
        for j, s in enumerate(series):
            value = s.values[i]
            y = y0 + j * bar_h
            shown = "—" if value is None else fmt(value)
            w = 0.0 if value is None else plot_w * min(value / scale, 1.0)
            parts.append(_rect(label_w, y, w, bar_h - 2, s.color, f"{label} {s.name}: {shown}"))
            parts.append(_text(label_w + w + 4, y + bar_h - 2, shown, size=FONT - 1))
    if threshold is not None:
        x = label_w + plot_w * threshold / scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 6:.1f}" x2="{x:.1f}" y2="{height - 8:.1f}" '
            f'stroke="#c0392b" stroke-dasharray="4 3"/>'
        )
        parts.append(_text(x, top - 10, fmt(threshold), "middle", FONT - 1))
    parts += _legend(series, 4, 14)
    return _svg(width, height, title, parts)


def sparkline(
    title: str, values: Sequence[int], *, width: float = 150, height: float = 30
) -> Markup:
    """A small line of counts (an event's posts per day) with its peak marked."""
    peak = max(values, default=0) or 1
    step = width / max(len(values) - 1, 1)
    points = [(i * step, height - 3 - (height - 6) * v / peak) for i, v in enumerate(values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    top = max(range(len(values)), key=lambda i: values[i]) if values else 0
    parts = [f'<polyline points="{path}" fill="none" stroke="#2c7fb8" stroke-width="1.5"/>']
    if values:
        x, y = points[top]
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#c0392b"/>')
    return _svg(width, height, title, parts)
