"""The pages without a browser: who may open which page, the login form, escaping of
crawled text, live-row fragments, the overview's figures and the admin pages."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from pipeline.messages import now_utc
from pipeline.storage import models
from responders.web.pages.chart import timeline_chart
from responders.web.pages.queries import week_start
from responders.web.pages.render import countdown, http_url
from responders.web.schemas import TimelinePoint
from tests.responders.conftest import T0
from tests.responders.web.conftest import PASSWORD, Alerts, add_post, login

PAGES = [
    "/press",
    "/queue",
    "/queue/history",
    "/leader",
    "/admin/users",
    "/admin/departments",
    "/admin/sources",
]
#: Pages each user may open (others are a 403 page).
ALLOWED = {
    "press1": {"/press", "/leader"},
    "leader1": {"/press", "/leader"},
    "admin1": {"/press", "/admin/users", "/admin/departments", "/admin/sources"},
    "env1": {"/queue", "/queue/history"},
}


def form_login(client: TestClient, username: str, password: str = PASSWORD, **extra: str):
    """Log in through the login page's form (with its double-submit token)."""
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    data = {"username": username, "password": password, "csrf": token, **extra}
    return client.post("/login", data=data, follow_redirects=False)


def test_anonymous_is_sent_to_login_and_back(client: TestClient) -> None:
    for path in [*PAGES, "/", "/alerts/x"]:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
    assert client.get("/login").status_code == 200


@pytest.mark.parametrize("username", sorted(ALLOWED))
def test_each_role_opens_its_pages_only(
    client: TestClient, tokens: dict[str, str], alerts: Alerts, username: str
) -> None:
    login(client, username)
    for path in PAGES:
        response = client.get(path)
        expected = 200 if path in ALLOWED[username] else 403
        assert response.status_code == expected, (username, path)
        assert response.headers["content-type"].startswith("text/html")
        if expected == 403:
            assert "无权访问此页面" in response.text
    home = client.get("/", follow_redirects=False).headers["location"]
    assert home in ALLOWED[username]


def test_department_user_gets_404_page_for_another_departments_alert(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    login(client, "env1")
    own = client.get(f"/alerts/{alerts.env.id}")
    assert own.status_code == 200 and alerts.env.title in own.text
    other = client.get(f"/alerts/{alerts.edu.id}")
    missing = client.get("/alerts/no-such-alert")
    assert other.status_code == missing.status_code == 404
    assert "找不到这条告警" in other.text and alerts.edu.title not in other.text
    assert other.text == missing.text
    assert client.get(f"/fragments/alert-row/{alerts.edu.id}").status_code == 204
    assert client.get(f"/fragments/alert-row/{alerts.env.id}?view=queue").status_code == 200


def test_pages_show_actions_of_the_callers_role(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    forms = {
        "env1": ["/ack", "/respond", "/transfer"],
        "press1": ["/confirm", "/dismiss", "/severity", "/reassign"],
        "leader1": ["/instruct"],
        "admin1": [],
    }
    for username, expected in forms.items():
        login(client, username)
        text = client.get(f"/alerts/{alerts.env.id}").text
        shown = set(re.findall(r'data-api="/api/alerts/[^/"]+(/[a-z-]+)"', text))
        assert shown == set(expected), username


def test_login_form(client: TestClient, tokens: dict[str, str]) -> None:
    wrong = form_login(client, "press1", "not the password")
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    assert 'value="press1"' in wrong.text  # the username is kept, the password is not
    ok = form_login(client, "press1")
    assert ok.status_code == 303 and ok.headers["location"] == "/press"
    assert client.get("/press").status_code == 200
    back = form_login(client, "env1", next="/queue/history")
    assert back.headers["location"] == "/queue/history"
    elsewhere = form_login(client, "env1", next="//evil.example/")
    assert elsewhere.headers["location"] == "/queue"


def test_login_form_needs_its_token(client: TestClient, tokens: dict[str, str]) -> None:
    data = {"username": "press1", "password": PASSWORD, "csrf": "forged"}
    response = client.post("/login", data=data, follow_redirects=False)
    assert response.status_code == 400 and "登录表单已过期" in response.text


def test_login_rate_limit_says_when_to_retry(
    client: TestClient, tokens: dict[str, str], web_settings
) -> None:
    for _ in range(web_settings.web_login_max_failures):
        form_login(client, "press1", "wrong password")
    limited = form_login(client, "press1")
    assert limited.status_code == 429 and "登录失败次数过多" in limited.text


MARKUP = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def test_crawled_markup_is_rendered_as_text(
    client: TestClient, session: Session, tokens: dict[str, str], alerts: Alerts
) -> None:
    add_post(
        session,
        alerts.env.event_id,
        "p-xss",
        text=MARKUP,
        title="<b>标题</b>",
        url="javascript:alert(3)",
    )
    login(client, "press1")
    response = client.get(f"/alerts/{alerts.env.id}")
    assert MARKUP not in response.text and "<b>标题</b>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert 'href="javascript:' not in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    api = client.get(f"/api/alerts/{alerts.env.id}")
    assert "default-src 'none'" in api.headers["content-security-policy"]


def test_live_row_follows_the_page_filters(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    login(client, "press1")
    row = client.get(f"/fragments/alert-row/{alerts.env.id}?severity=high")
    assert row.status_code == 200 and f'data-id="{alerts.env.id}"' in row.text
    assert "<html" not in row.text
    assert client.get(f"/fragments/alert-row/{alerts.env.id}?severity=low").status_code == 204
    assert client.get(f"/fragments/alert-row/{alerts.env.id}?state=closed").status_code == 204


def test_press_filters_and_their_errors(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    login(client, "press1")
    both = client.get("/press").text
    assert alerts.env.title in both and alerts.edu.title in both
    only_edu = client.get("/press?department=education").text
    assert alerts.edu.id in only_edu and alerts.env.id not in only_edu
    bad = client.get("/press?since=yesterday")
    assert bad.status_code == 200 and "筛选条件有误" in bad.text
    none = client.get("/press?topic=无此话题").text
    assert "没有符合筛选条件的告警" in none


def test_queue_puts_the_nearest_deadline_first(
    client: TestClient, session: Session, tokens: dict[str, str], make_alert
) -> None:
    later = make_alert("environment", "low")
    sooner = make_alert("environment", "critical")
    login(client, "env1")
    text = client.get("/queue").text
    assert text.index(sooner.id) < text.index(later.id)
    assert "超时" in text  # raised at T0, long past


def test_leader_overview_counts_this_week(
    client: TestClient, session: Session, tokens: dict[str, str], make_alert
) -> None:
    now = now_utc()
    start = week_start(now, ZoneInfo("Asia/Shanghai"))  # both raised this week, also on Monday
    on_time = make_alert("environment", "high", at=max(now - timedelta(minutes=5), start))
    on_time.acknowledged_at = now
    late = make_alert("environment", "high", at=max(now - timedelta(minutes=1), start))
    late.overdue = True
    session.commit()
    login(client, "leader1")
    text = client.get("/leader").text
    row = re.search(r"区环保局</a></th>(.*?)</tr>", text, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert [c.strip() for c in cells[:3]] == ["2", "2", "1"]
    assert "100%" in cells[3]
    assert "周报尚未生成" in text  # nothing archived yet: an empty state that says what to do
    session.add(
        models.Report(
            kind="weekly", period="2026-W47", format="pdf", generated_at=now, content=b"%PDF"
        )
    )
    session.commit()
    text = client.get("/leader").text
    assert '<a href="/api/reports/weekly?week=2026-W47&amp;format=pdf">PDF</a>' in text


def test_admin_pages(client: TestClient, session: Session, tokens: dict[str, str]) -> None:
    session.add(
        models.CrawlSource(
            source_id="local-forum",
            kind="discuz",
            status="blocked",
            blocked_reason="captcha page",
            consecutive_failures=3,
        )
    )
    session.commit()
    login(client, "admin1")
    sources = client.get("/admin/sources").text
    assert 'class="status-blocked"' in sources
    assert "captcha page" in sources and "1 个数据源被封禁" in sources
    assert sources.index("local-forum") < sources.index("district-news-rss")
    users = client.get("/admin/users").text
    assert all(name in users for name in ("press1", "env1", "admin1"))
    departments = client.get("/admin/departments").text
    assert "区环保局" in departments and "区教委" in departments


def test_http_url_only_links_http() -> None:
    assert http_url("https://example.org/a") == "https://example.org/a"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//example.org", "ftp://x", None):
        assert http_url(bad) is None


def test_countdown_wording() -> None:
    assert countdown(T0 + timedelta(hours=1, minutes=20), T0).text == "剩 1小时20分"
    assert countdown(T0 - timedelta(days=2, hours=3), T0).text == "超时 2天3小时"
    assert countdown(T0 + timedelta(minutes=30), T0).css == "soon"


def test_chart_fills_quiet_hours_and_groups_long_events_by_day() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    points = [
        TimelinePoint(hour=T0, posts=3, sources=2),
        TimelinePoint(hour=T0 + timedelta(hours=3), posts=7, sources=1),
    ]
    chart = timeline_chart(points, tz)
    assert chart is not None and chart.unit == "小时"
    assert [b.posts for b in chart.bars] == [3, 0, 0, 7]
    assert chart.bars[3].height > chart.bars[0].height > chart.bars[1].height == 0
    long = [*points, TimelinePoint(hour=T0 + timedelta(days=5), posts=1, sources=1)]
    daily = timeline_chart(long, tz)
    assert daily is not None and daily.unit == "天" and len(daily.bars) == 6
    assert sum(b.posts for b in daily.bars) == 11
    assert timeline_chart([], tz) is None


@pytest.mark.slow
def test_screenshot_demo_data_renders_on_every_page(tmp_path, monkeypatch) -> None:
    """`docs/screenshots.py` builds its demo through the real paths; every page renders it."""
    import importlib.util

    from pipeline.settings import Settings
    from responders.web.app import create_app
    from tests.responders.conftest import CONFIG, REPO

    spec = importlib.util.spec_from_file_location("screenshots", REPO / "docs" / "screenshots.py")
    demo = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "screenshots", demo)  # dataclasses look it up
    spec.loader.exec_module(demo)
    settings = Settings(config_dir=CONFIG, data_dir=tmp_path)
    ids = demo.build_demo(settings)
    with TestClient(create_app(settings)) as client:
        for name, user, path, _phone in demo.SHOTS:
            if user:
                login(client, user, demo.PASSWORD)
            response = client.get(path.format(**ids))
            assert response.status_code == 200, (name, response.text[:200])
