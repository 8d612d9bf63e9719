"""DingTalk and WeCom group robots against a real HTTP server: message formats, DingTalk's
signed URL, robots' error codes, and crawled text rendered escaped."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

import pytest

from responders.notify import dingtalk, wecom
from responders.notify.base import Note
from tests.responders.notify.conftest import HttpReceiver, Outbox, notify_config

URL_ENV = "YUQING_TEST_ROBOT_URL"
DING_SECRET_ENV = "YUQING_TEST_DINGTALK_SECRET"
DING_SECRET = "SEC0123456789abcdef"
HOSTILE = "<script>alert(1)</script> [点我](javascript:alert(1)) **粗** <font color=red>x</font>"


@pytest.fixture
def robot_env(http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> HttpReceiver:
    # Robot URLs carry their token; it comes from the environment like any secret.
    monkeypatch.setenv(URL_ENV, f"{http_receiver.url}?access_token=tok123")
    monkeypatch.setenv(DING_SECRET_ENV, DING_SECRET)
    return http_receiver


def test_dingtalk_signed_markdown(
    robot_env: HttpReceiver, outbox: Callable[..., Outbox], make_alert
) -> None:
    target = {"channel": "dingtalk", "url_env": URL_ENV, "secret_env": DING_SECRET_ENV}
    box = outbox(notify_config({"press-ding": target}))
    alert = make_alert(severity="critical")
    alert.title = HOSTILE
    [key] = box.add(alert)

    assert box.deliverer().run_once() == 1

    [request] = robot_env.received
    assert request.query["access_token"] == "tok123"
    timestamp = request.query["timestamp"]
    assert abs(int(timestamp) / 1000 - time.time()) < 60  # milliseconds
    expected = base64.b64encode(
        hmac.new(
            DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert request.query["sign"] == expected
    body = request.json()
    assert body["msgtype"] == "markdown"
    text = body["markdown"]["text"]
    assert body["markdown"]["title"].startswith("【新舆情预警】[特别重大/重大]")
    assert "<script>" not in text and "<font" not in text and "](javascript" not in text
    assert "&lt;script&gt;" in text
    assert "责任单位：区环保局" in text
    assert f"[查看预警](https://yuqing.example.gov.cn/alerts/{alert.id})" in text
    assert key.replace(":", "") in text.replace("\\", "").replace(":", "")
    assert box.rows()[0].status == "sent"


def test_dingtalk_without_secret_sends_the_plain_url(
    robot_env: HttpReceiver, outbox: Callable[..., Outbox], make_alert
) -> None:
    box = outbox(notify_config({"ding": {"channel": "dingtalk", "url_env": URL_ENV}}))
    box.add(make_alert())
    box.deliverer().run_once()
    assert robot_env.received[0].query == {"access_token": "tok123"}


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (b'{"errcode":130101,"errmsg":"send too fast"}', "pending"),
        (b'{"errcode":310000,"errmsg":"sign not match"}', "failed"),
        (b"<html>gateway</html>", "pending"),
    ],
)
def test_dingtalk_error_codes(
    reply: bytes, status: str, robot_env: HttpReceiver, outbox: Callable[..., Outbox], make_alert
) -> None:
    box = outbox(notify_config({"ding": {"channel": "dingtalk", "url_env": URL_ENV}}))
    box.add(make_alert())
    robot_env.answer((200, reply))
    box.deliverer().run_once()
    [row] = box.rows()
    assert row.status == status


def test_wecom_markdown(robot_env: HttpReceiver, outbox: Callable[..., Outbox], make_alert) -> None:
    box = outbox(notify_config({"wecom": {"channel": "wecom", "url_env": URL_ENV}}))
    alert = make_alert(severity="high")
    alert.title = HOSTILE
    box.add(alert)
    assert box.deliverer().run_once() == 1
    [request] = robot_env.received
    assert request.query == {"access_token": "tok123"}
    body = request.json()
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith('### <font color="warning">新舆情预警</font>')
    assert "<script>" not in content and "<font color=red>" not in content
    assert "级别：较大" in content


def test_wecom_rate_limit_is_retried(
    robot_env: HttpReceiver, outbox: Callable[..., Outbox], make_alert
) -> None:
    box = outbox(notify_config({"wecom": {"channel": "wecom", "url_env": URL_ENV}}))
    box.add(make_alert())
    robot_env.answer((200, b'{"errcode":45009,"errmsg":"api freq out of limit"}'))
    box.deliverer().run_once()
    [row] = box.rows()
    assert row.status == "pending" and "45009" in row.last_error


def test_wecom_content_fits_4096_bytes() -> None:
    payload = {
        "headline": "新舆情预警",
        "subject": "s",
        "facts": [["责任单位", "区环保局"]],
        "alert": {"title": "长" * 5000, "severity": "low"},
    }
    content = wecom.body(Note("k", "created", payload))["markdown"]["content"]  # type: ignore[index]
    assert len(content.encode()) <= wecom.MAX_CONTENT_BYTES
    assert "长" * 100 in content


def test_dingtalk_signed_url_keeps_the_query() -> None:
    url = dingtalk.signed_url("https://oapi.dingtalk.com/robot/send?access_token=t", "s", 1000)
    assert url.startswith(
        "https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1000&sign="
    )
