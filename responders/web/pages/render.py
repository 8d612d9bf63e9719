"""Templates, labels and page responses shared by every page.

Autoescaping is on for every template and no filter here marks text as safe, so crawled
text (titles, posts, replies, reasons) always reaches the browser as text. Links are made
only from http(s) URLs (`http_url`): a `javascript:` or `data:` URL in a crawled post
stays text. Pages carry their own Content-Security-Policy (scripts and styles from this
app only, no inline script), a second fence behind the escaping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from pipeline.settings import Settings
from responders.notify.message import STATE_LABELS, Labels
from responders.web.auth import Principal

HERE = Path(__file__).parent

#: Headers of every page (the API keeps its stricter `default-src 'none'`).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "Cache-Control": "no-store",
}

SENTIMENT_LABELS = {"negative": "负面", "neutral": "中性", "positive": "正面"}
ROLE_LABELS = {"press": "新闻办", "department": "部门", "leader": "领导", "admin": "管理员"}
ACTION_LABELS = {
    "raise": "生成预警",
    "acknowledge": "签收",
    "respond": "回应",
    "request_transfer": "申请转办",
    "approve_transfer": "同意转办",
    "reject_transfer": "驳回转办",
    "dismiss": "排除（误报）",
    "reassign": "改派",
    "reopen": "重新打开",
    "instruct": "领导批示",
    "change_severity": "调整等级",
    "close": "办结",
    "confirm": "核实",
    "flare_up": "事件再起",
    "crawled_reply": "抓取到官方回复",
    "escalate": "升级",
}
CRAWL_STATUS_LABELS = {"never": "未抓取", "ok": "正常", "failing": "失败", "blocked": "被封禁"}

#: Where each role lands after login, and its navigation (path, label).
HOME = {"press": "/press", "department": "/queue", "leader": "/leader", "admin": "/admin/users"}
NAV = {
    "press": [("/press", "告警流"), ("/leader", "总体情况")],
    "department": [("/queue", "我的队列"), ("/queue/history", "办理历史")],
    "leader": [("/leader", "总体情况"), ("/press", "告警流")],
    "admin": [
        ("/admin/users", "用户"),
        ("/admin/departments", "部门"),
        ("/admin/sources", "数据源"),
        ("/press", "告警流"),
    ],
}


@lru_cache(maxsize=8)
def _labels(config_dir: Path) -> Labels:
    return Labels.load(Settings(config_dir=config_dir))


def labels(settings: Settings) -> Labels:
    """Department names, severity labels and time zone of the app's config (read once)."""
    return _labels(Path(settings.config_dir))


def http_url(url: str | None) -> str | None:
    """`url` if it is an http(s) URL with a host, else None (then it is shown as text)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def span_text(seconds: float) -> str:
    """A duration as people read it on a countdown: 2天3小时, 1小时20分, 5分."""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时"
    if hours:
        return f"{hours}小时{mins}分"
    return f"{mins}分"


@dataclass(frozen=True)
class Countdown:
    """A deadline as shown: text and CSS class (`late` past due, `soon` within 1 hour)."""

    text: str
    css: str


def countdown(due: datetime | None, now: datetime) -> Countdown:
    """Same wording as `app.js`, which keeps it ticking in the browser."""
    if due is None:
        return Countdown("—", "")
    left = (due - now).total_seconds()
    if left < 0:
        return Countdown(f"超时 {span_text(left)}", "late")
    return Countdown(f"剩 {span_text(left)}", "soon" if left < 3600 else "")


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["http_url"] = http_url
    env.filters["iso"] = lambda when: when.astimezone(UTC).isoformat() if when else ""
    env.globals.update(
        STATE_LABELS=STATE_LABELS,
        SENTIMENT_LABELS=SENTIMENT_LABELS,
        ROLE_LABELS=ROLE_LABELS,
        ACTION_LABELS=ACTION_LABELS,
        CRAWL_STATUS_LABELS=CRAWL_STATUS_LABELS,
        countdown=countdown,
    )
    return env


ENV = make_environment()


def page(
    request: Request,
    template: str,
    principal: Principal | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render `template` with what every page needs (user, navigation, labels, clock)."""
    names = labels(request.app.state.web.settings)
    tz = names.tz

    def local(when: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
        return when.astimezone(tz).strftime(fmt) if when else "—"

    html = ENV.get_template(template).render(
        request=request,
        user=principal,
        nav=NAV.get(principal.role, []) if principal else [],
        path=request.url.path,
        csrf=(principal.csrf_token or "") if principal else "",
        dept_name=lambda d: names.departments.get(d, d) if isinstance(d, str) and d else "—",
        departments=names.departments,
        sev_label=lambda s: names.severities.get(s, s) if isinstance(s, str) else s,
        severities=names.severities,
        local=local,
        now=datetime.now(UTC),
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
