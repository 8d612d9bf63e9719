"""The weekly report as HTML (screen), PDF (A4 print, WeasyPrint) and JSON (other
systems). HTML and PDF come from one Jinja2 template, so they cannot disagree on a
figure; autoescape is on because topics, titles and names come from outside.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pipeline.storage.models import REPORT_FORMATS
from responders.reports import charts
from responders.reports.charts import Series
from responders.reports.weekly import WeeklyReport, percent

MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "json": "application/json",
}
assert set(MEDIA_TYPES) == set(REPORT_FORMATS)

SENTIMENT_LABELS = {"negative": "负面", "neutral": "中性", "positive": "正面"}
SENTIMENT_COLORS = {"negative": "#c0392b", "neutral": "#95a5a6", "positive": "#27ae60"}
THIS_WEEK, LAST_WEEK = "#2c7fb8", "#b3cde3"
EFFECT_CHART_ROWS = 12
TIMELINE_ROWS = 12  # alerts listed per top event
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def duration(seconds: float | None) -> str:
    """Calendar seconds as people read them: `2天3小时`, `1小时30分`, `45分`, `30秒`."""
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{seconds:.0f}秒"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时" if hours else f"{days}天"
    if hours:
        return f"{hours}小时{minutes}分" if minutes else f"{hours}小时"
    return f"{minutes}分"


def points(current: float | None, previous: float | None) -> str:
    """A change of rate in percentage points."""
    if current is None or previous is None:
        return "—"
    return f"{(current - previous) * 100:+.1f} 个百分点"


def count_change(current: int, previous: int) -> str:
    return f"{current - previous:+d}"


def time_change(current: float | None, previous: float | None) -> str:
    if current is None or previous is None:
        return "—"
    sign = "+" if current >= previous else "−"
    return f"{sign}{duration(abs(current - previous))}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("responders.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=percent, duration=duration)
    return env


_ENV = _environment()


def _charts(report: WeeklyReport) -> dict[str, Markup]:
    """Every chart of the report, drawn from the report's figures only."""
    labels = report.options.severity_labels
    severities = list(report.headline.by_severity)
    out = {
        "severity": charts.bar_chart(
            "各级别预警数（本周与上周）",
            [labels.get(s, s) for s in severities],
            [
                Series("本周", [report.headline.by_severity[s] for s in severities], THIS_WEEK),
                Series("上周", [report.previous.by_severity[s] for s in severities], LAST_WEEK),
            ],
        ),
        "sentiment": charts.bar_chart(
            "每日预警数（按情感）",
            list(WEEKDAYS),
            [
                Series(SENTIMENT_LABELS.get(s, s), counts, SENTIMENT_COLORS.get(s, "#ddd"))
                for s, counts in report.sentiment_by_day.items()
                if any(counts)
            ],
            stacked=True,
        ),
    }
    if report.departments:
        out["departments"] = charts.hbar_chart(
            "各单位回应按时率",
            [d.name for d in report.departments],
            [
                Series(
                    "本周", [d.tally.response_on_time_rate for d in report.departments], THIS_WEEK
                )
            ],
            max_value=1.0,
            bar_h=11.0,
            threshold=report.options.config.named.response_on_time_rate_below,
            fmt=percent,
        )
    if report.topics:
        out["topics"] = charts.hbar_chart(
            "话题预警数（本周与上周）",
            [t for t, _, _ in report.topics],
            [
                Series("本周", [n for _, n, _ in report.topics], THIS_WEEK),
                Series("上周", [n for _, _, n in report.topics], LAST_WEEK),
            ],
        )
    measured = sorted(
        (d for d in report.departments if d.effect.responses), key=lambda d: -d.effect.before
    )[:EFFECT_CHART_ROWS]
    if measured:
        out["effect"] = charts.hbar_chart(
            f"回应前后负面帖文数（前 {EFFECT_CHART_ROWS} 个单位）",
            [d.name for d in measured],
            [
                Series("回应前", [d.effect.before for d in measured], "#e67e22"),
                Series("回应后", [d.effect.after for d in measured], "#16a085"),
            ],
        )
    for timeline in report.events:
        out[f"event:{timeline.event.id}"] = charts.sparkline(
            f"{timeline.event.title} 每日帖文数", timeline.posts_by_day
        )
    return out


def changes(report: WeeklyReport) -> list[tuple[str, str, str, str]]:
    """(metric, this week, last week, change) rows of the comparison table."""
    h, p = report.headline, report.previous
    rows: list[
        tuple[str, Callable[[Any], Any], Callable[[Any], str], Callable[[Any, Any], str]]
    ] = [
        ("预警总数", lambda w: w.tally.alerts, str, count_change),
        ("签收按时率", lambda w: w.tally.ack_on_time_rate, percent, points),
        ("回应按时率", lambda w: w.tally.response_on_time_rate, percent, points),
        ("签收用时中位数", lambda w: w.time_to_ack.median, duration, time_change),
        ("回应用时中位数", lambda w: w.time_to_respond.median, duration, time_change),
        ("逾期未回应", lambda w: w.tally.overdue, str, count_change),
    ]
    return [
        (label, show(get(h)), show(get(p)), change(get(h), get(p)))
        for label, get, show, change in rows
    ]


def render_html(report: WeeklyReport) -> str:
    tz = report.options.tz

    def local(when: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
        return when.astimezone(tz).strftime(fmt) if when else "—"

    last_day = report.window.end.astimezone(tz).date().toordinal() - 1
    context: dict[str, Any] = {
        "r": report,
        "charts": _charts(report),
        "changes": changes(report),
        "local": local,
        "points": points,
        "weekdays": WEEKDAYS,
        "timeline_rows": TIMELINE_ROWS,
        "last_day": datetime.fromordinal(last_day).date(),
        "labels": report.options.severity_labels,
        "rules": report.options.config.named,
        "hours": report.options.config.response_effect_hours,
    }
    return _ENV.get_template("weekly.html.j2").render(context)


def render_pdf(report: WeeklyReport) -> bytes:
    """A4 PDF of the HTML (print CSS in the template); fonts from the system's CJK fonts."""
    from weasyprint import HTML

    return HTML(string=render_html(report), base_url=None).write_pdf()


def render_json(report: WeeklyReport) -> str:
    return json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n"


def render(report: WeeklyReport, fmt: str) -> bytes:
    """The report in `fmt` (`html`, `pdf`, `json`) as bytes to write or serve."""
    if fmt == "pdf":
        return render_pdf(report)
    if fmt == "html":
        return render_html(report).encode()
    if fmt == "json":
        return render_json(report).encode()
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(MEDIA_TYPES)}")
