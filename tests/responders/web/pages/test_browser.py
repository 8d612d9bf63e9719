"""The pages in headless Chromium against a real server: the live stream, a department
clearing its queue while the press office watches, refusal of another department's
alert, crawled markup shown as text, and a failed login."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.responders.web.conftest import Alerts, add_post

pytestmark = pytest.mark.slow


def row(tab: Any, alert_id: str) -> Any:
    return tab.page.locator(f'table[data-live] tr[data-id="{alert_id}"]')


def wait_connected(tab: Any) -> None:
    """Until the page's event stream is open (page scripts only: the CSP forbids eval)."""
    tab.page.locator("[data-live-status]", has_text="已连接").wait_for()


def wait_for_title(tab: Any, text: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while text not in tab.page.title():
        assert time.monotonic() < deadline, f"title never showed {text!r}"
        tab.page.wait_for_timeout(100)


def test_press_officer_sees_a_new_alert_arrive_live(
    tabs: Any, tokens: dict[str, str], make_alert: Any
) -> None:
    press = tabs()
    press.login("press1")
    assert press.page.url.endswith("/press")
    assert press.page.get_by_text("目前没有在办的告警").is_visible()
    wait_connected(press)
    alert = make_alert("environment", "critical")  # raised the stage's way, audit row and all
    row(press, alert.id).wait_for()
    assert alert.title in row(press, alert.id).inner_text()
    assert not press.page.get_by_text("目前没有在办的告警").is_visible()
    wait_for_title(press, "特别重大告警")


def test_department_acknowledges_and_responds_while_press_watches(
    tabs: Any, tokens: dict[str, str], alerts: Alerts
) -> None:
    press = tabs()
    press.login("press1")
    wait_connected(press)
    clerk = tabs()
    clerk.login("env1")
    assert clerk.page.url.endswith("/queue")
    assert row(clerk, alerts.edu.id).count() == 0
    row(clerk, alerts.env.id).get_by_role("button", name="签收").click()
    row(clerk, alerts.env.id).locator(".state", has_text="已签收").wait_for()
    row(press, alerts.env.id).locator(".state", has_text="已签收").wait_for()

    row(clerk, alerts.env.id).get_by_role("link", name="回应 / 转办").click()
    form = clerk.page.locator("form[aria-label=回应]")
    form.locator("textarea[name=text]").fill("已责令施工单位夜间停工，并对工地扬尘进行整改。")
    form.locator("select[name=channel]").select_option("政务微博")
    form.locator("input[name=link]").fill("https://weibo.example/gov/1")
    form.get_by_role("button", name="提交回应").click()
    clerk.page.locator(".response", has_text="已责令施工单位夜间停工").wait_for()
    assert "已回应" in clerk.page.locator(".badges").inner_text()
    row(press, alerts.env.id).locator(".state", has_text="已回应").wait_for()


def test_department_user_typing_another_departments_alert_url_is_refused(
    tabs: Any, tokens: dict[str, str], alerts: Alerts
) -> None:
    clerk = tabs()
    clerk.login("env1")
    response = clerk.goto(f"/alerts/{alerts.edu.id}")
    assert response.status == 404
    assert clerk.page.get_by_role("heading", name="找不到这条告警").is_visible()
    assert alerts.edu.title not in clerk.page.content()


def test_post_markup_renders_as_text(
    tabs: Any, session: Session, tokens: dict[str, str], alerts: Alerts
) -> None:
    markup = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    add_post(session, alerts.env.event_id, "p-xss", text=markup, title="<b>x</b>")
    press = tabs()
    press.login("press1")
    press.goto(f"/alerts/{alerts.env.id}")
    texts = press.page.locator(".post-text").all_inner_texts()
    assert markup in texts
    assert "<b>x</b>" in press.page.locator(".post-title").all_inner_texts()
    assert press.page.locator(".post img, .post script, .post b").count() == 0
    press.page.wait_for_timeout(300)
    assert press.dialogs == []


def test_login_with_a_wrong_password_says_what_to_do(tabs: Any, tokens: dict[str, str]) -> None:
    tab = tabs()
    tab.login("press1", "not the password")
    error = tab.page.locator("#login-error")
    assert "用户名或密码错误" in error.inner_text()
    assert "联系系统管理员" in error.inner_text()
    assert tab.page.input_value("input[name=username]") == "press1"
