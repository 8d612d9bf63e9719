"""Screenshots of the web app for the README: demo data in a fresh SQLite database, the
app on a real uvicorn server, each page photographed by headless Chromium.

    .venv/bin/python docs/screenshots.py            # writes docs/screenshots/*.png

The posts are real sentences from `classifiers/data/departments/labels.jsonl` (the
labelled department data), raised into alerts through the responder's own path and
handled through the queue's actions, so the pages show what a district would see.
Needs Debian's chromium (`apt-get install -y chromium`) and `pip install playwright`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import uvicorn
from sqlalchemy.orm import Session

from pipeline.cli import prepare_database
from pipeline.messages import now_utc
from pipeline.settings import Settings
from pipeline.storage import models
from pipeline.storage.db import make_engine, session_factory
from responders import queue
from responders.deadlines import DeadlineCalculator, load_calculator
from responders.web import accounts

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "classifiers" / "data" / "departments" / "labels.jsonl"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "demo-password-2026"
#: username → (role, department)
USERS = {
    "xinwenban": ("press", None),
    "huanbao": ("department", "environment"),
    "chengguan": ("department", "urban-enforcement"),
    "lingdao": ("leader", None),
    "admin": ("admin", None),
}
SOURCES = ["district-weibo", "local-forum", "district-message-board", "district-news-rss"]


@dataclass(frozen=True)
class DemoEvent:
    """One event: posts of `department` containing `keyword`, spread over `hours`."""

    key: str
    department: str
    keyword: str
    topic: str
    severity: str
    hours_ago: float
    posts: int
    sentiment: str = "negative"


EVENTS = [
    DemoEvent("air", "environment", "污染", "环境保护", "critical", 5, 14),
    DemoEvent("stalls", "urban-enforcement", "占道", "城市管理", "high", 9, 6),
    DemoEvent("sanitation", "urban-mgmt", "环卫", "城市管理", "medium", 30, 4),
    DemoEvent("exam", "education", "高考", "教育", "medium", 3, 3, "neutral"),
    DemoEvent("hospital", "health", "医院", "医疗卫生", "medium", 50, 5),
    DemoEvent("jobs", "hr-social", "就业", "就业社保", "low", 70, 2, "neutral"),
    DemoEvent("taxi", "transport", "出租车", "交通出行", "medium", 1.5, 3),
    DemoEvent("housing", "housing", "住房", "住房保障", "low", 20, 2, "positive"),
    DemoEvent("demolition", "urban-enforcement", "违建", "城市管理", "medium", 26, 3),
]


def sentences(department: str, keyword: str, count: int) -> list[str]:
    """The first `count` labelled sentences of `department` that mention `keyword`."""
    found = []
    with LABELS.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if row["label"] == department and keyword in row["text"] and not row.get("rejected"):
                found.append(row["text"])
    if not found:
        raise SystemExit(f"no labelled sentence of {department} mentions {keyword}")
    return [found[i % len(found)] for i in range(count)]


def add_event(session: Session, spec: DemoEvent, now: datetime) -> models.Event:
    """The event with its posts (each classified), growing towards now."""
    texts = sentences(spec.department, spec.keyword, spec.posts)
    first = now - timedelta(hours=spec.hours_ago)
    span = timedelta(hours=min(spec.hours_ago, 8))
    times = [first + span * (i / max(spec.posts - 1, 1)) ** 0.6 for i in range(spec.posts)]
    used = SOURCES[: min(len(SOURCES), 1 + spec.posts // 4)]
    event = models.Event(
        id=f"ev-{spec.key}",
        title=texts[0][:40],
        topic=spec.topic,
        first_seen=times[0],
        last_seen=times[-1],
        post_count=spec.posts,
        source_count=len(used),
        heat=round(spec.posts * 7.5, 1),
        state="open",
        sources=used,
    )
    session.add(event)
    for i, (text, at) in enumerate(zip(texts, times, strict=True)):
        post_id = f"post-{spec.key}-{i}"
        source = used[i % len(used)]
        session.add(
            models.Post(
                id=post_id,
                source=source,
                channel="feed",
                url=f"https://{source}.example.cn/t/{spec.key}{i}",
                title=text[:24],
                text=text,
                author_masked="网友**",
                published_at=at,
                fetched_at=at,
                metrics={"views": 300 * (i + 1), "replies": 4 * i},
            )
        )
        session.flush()
        session.add(models.EventPost(event_id=event.id, post_id=post_id, at=at))
        session.add(classification(post_id, spec, text, at))
    session.flush()
    return event


def classification(post_id: str, spec: DemoEvent, text: str, at: datetime) -> models.Classification:
    negative_terms = [t for t in ("严重", "污染", "不合格", "没人管", "负担") if t in text]
    return models.Classification(
        post_id=post_id,
        model_version="demo-1",
        policy_relevant=True,
        relevance_score=0.93,
        departments=[{"id": spec.department, "score": 0.82, "role": "lead"}],
        topic=spec.topic,
        sentiment=spec.sentiment,
        sentiment_score=0.88,
        sensitivity=["切身利益"] if spec.severity in ("critical", "high") else [],
        severity=spec.severity,
        explanation={"departments": [spec.keyword], "sentiment": negative_terms},
        classified_at=at,
    )


def raise_alert(
    session: Session, event: models.Event, spec: DemoEvent, deadlines: DeadlineCalculator
) -> models.Alert:
    """Raised the responder's way: one alert per (event, department) with its audit row."""
    raise_spec = queue.RaiseSpec(
        event,
        spec.department,
        "lead",
        spec.severity,
        event.title,
        topic=spec.topic,
        sentiment=spec.sentiment,
    )
    log = queue.StageLog()
    alert = queue.raise_or_update(
        session, raise_spec, [], now=event.first_seen, deadlines=deadlines, log=log
    )
    log.write(session)
    assert alert is not None
    return alert


def handle(session: Session, alerts: dict[str, models.Alert], deadlines: DeadlineCalculator):
    """A week's worth of handling: acks, responses, a transfer, an instruction, a close."""
    now = now_utc()
    env = queue.Actor("huanbao", "department", "environment")
    enforcement = queue.Actor("chengguan", "department", "urban-enforcement")
    press = queue.Actor("xinwenban", "press")
    leader = queue.Actor("lingdao", "leader")

    def act(alert: str, actor: queue.Actor, action: str, hours_ago: float, **fields: str):
        when = now - timedelta(hours=hours_ago)
        queue.act(session, alerts[alert].id, actor, action, now=when, deadlines=deadlines, **fields)

    act("air", press, "confirm", 4.6)
    act("air", env, "acknowledge", 4.5)
    instruction = "请区环保局会同属地街道今日内查明污染源，及时发布权威信息。"
    act("air", leader, "instruct", 4, text=instruction)
    act("stalls", enforcement, "acknowledge", 8)
    act(
        "stalls",
        enforcement,
        "respond",
        6,
        text="已对村北头超市占道经营进行劝导整改，清理门前杂物和条幅，后续将持续巡查。",
        channel="回复网民",
        link="https://www.example-district.gov.cn/hd/reply/2031",
    )
    act(
        "demolition",
        enforcement,
        "request_transfer",
        20,
        department="planning",
        reason="涉及规划许可认定，应由规划国土分局先行认定。",
    )
    act("housing", press, "dismiss", 18, reason="外地新闻转载，与本区无关。")
    act("hospital", press, "change_severity", 45, severity="high", reason="多家媒体转载")
    alerts["hospital"].overdue = True  # the scheduler marks it when the deadline passes


def crawl_states(session: Session, now: datetime) -> None:
    """Source health as the crawler records it: one blocked, one failing."""
    rows = [
        ("district-news-rss", "feed", "ok", None, None, [12, 9, 14]),
        ("district-portal-notices", "html", "ok", None, None, [3, 0, 2]),
        ("local-forum", "discuz", "blocked", "登录/验证码页面（captcha）", None, [40, 38, 0]),
        ("district-weibo", "json_api", "failing", None, "HTTP 502 Bad Gateway", [25, 31]),
    ]
    for source_id, kind, status, reason, error, counts in rows:
        session.add(
            models.CrawlSource(
                source_id=source_id,
                kind=kind,
                status=status,
                last_success_at=now - timedelta(hours=5 if status != "ok" else 0.3),
                next_due_at=now + timedelta(minutes=25),
                recent_counts=counts,
                consecutive_failures={"blocked": 3, "failing": 2}.get(status, 0),
                blocked_reason=reason,
                blocked_since=now - timedelta(hours=4) if reason else None,
                blocked_until=now + timedelta(hours=2) if reason else None,
                last_error=error,
            )
        )


def build_demo(settings: Settings) -> dict[str, str]:
    """Migrate the settings' database and fill it; returns alert ids by event key."""
    prepare_database(settings)
    engine = make_engine(settings.resolved_database_url)
    deadlines = load_calculator(settings)
    now = now_utc()
    try:
        with session_factory(engine)() as session:
            for name, (role, department) in USERS.items():
                accounts.add_user(
                    session,
                    username=name,
                    role=role,
                    department_id=department,
                    password=PASSWORD,
                    min_length=settings.web_password_min_length,
                    by="demo",
                )
            alerts = {}
            for spec in EVENTS:
                alerts[spec.key] = raise_alert(
                    session, add_event(session, spec, now), spec, deadlines
                )
            session.commit()
            handle(session, alerts, deadlines)
            crawl_states(session, now)
            session.commit()
            return {key: alert.id for key, alert in alerts.items()}
    finally:
        engine.dispose()


@contextmanager
def serve(settings: Settings, port: int) -> Iterator[str]:
    """The web app on a real uvicorn server in a thread; yields its base URL."""
    from responders.web.app import create_app

    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


#: (file, user, path, phone?) photographed; `{air}` is the critical alert's id.
SHOTS = [
    ("login.png", None, "/login", False),
    ("press-stream.png", "xinwenban", "/press", False),
    ("alert-detail.png", "xinwenban", "/alerts/{air}", False),
    ("department-queue.png", "chengguan", "/queue", False),
    ("leader-overview.png", "lingdao", "/leader", False),
    ("admin-sources.png", "admin", "/admin/sources", False),
    ("press-stream-phone.png", "xinwenban", "/press", True),
    ("alert-detail-phone.png", "huanbao", "/alerts/{air}", True),
]


def capture(base: str, ids: dict[str, str], out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        args = ["--no-sandbox", "--lang=zh-CN"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        for name, user, path, phone in SHOTS:
            size = {"width": 390, "height": 844} if phone else {"width": 1366, "height": 900}
            context = browser.new_context(
                viewport=size,
                device_scale_factor=2 if phone else 1,
                is_mobile=phone,
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
            )
            page = context.new_page()
            if user:
                page.goto(base + "/login")
                page.fill("input[name=username]", user)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state()
            page.goto(base + path.format(**ids))
            if page.locator("[data-live-status]").count():
                page.locator("[data-live-status]", has_text="已连接").wait_for()
            target = out / name
            page.screenshot(path=str(target), full_page=not phone)
            written.append(target)
            context.close()
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(config_dir=REPO / "config", data_dir=Path(tmp))
        ids = build_demo(settings)
        with serve(settings, args.port) as base:
            for path in capture(base, ids, args.out):
                print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


if __name__ == "__main__":
    main()
