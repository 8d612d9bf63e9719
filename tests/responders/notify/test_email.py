"""E-mail through a real SMTP server on loopback (aiosmtpd): headers, the Message-ID
derived from the idempotency key, and SMTP failures sorted into retry or not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from responders.notify import email
from tests.conftest import free_port
from tests.responders.notify.conftest import Outbox, SmtpReceiver, notify_config

TO = ["press@example.gov.cn", "duty@example.gov.cn"]


def mail_config(port: int, **smtp: object):
    return notify_config(
        {"press-email": {"channel": "email", "to": TO}},
        smtp={
            "host": "127.0.0.1",
            "port": port,
            "sender": "yuqing@example.gov.cn",
            "timeout": "5s",
            **smtp,
        },
    )


def test_email_is_delivered_with_a_message_id_from_the_key(
    smtp_receiver: SmtpReceiver, outbox: Callable[..., Outbox], make_alert
) -> None:
    box = outbox(mail_config(smtp_receiver.port))
    alert = make_alert(severity="critical")
    [key] = box.add(alert)

    assert box.deliverer().run_once() == 1

    [message] = smtp_receiver.messages
    assert smtp_receiver.envelopes == [("yuqing@example.gov.cn", TO)]
    assert message["Message-ID"] == email.message_id(key, "yuqing@example.gov.cn")
    assert message["Message-ID"].endswith("@example.gov.cn>")
    assert message[email.KEY_HEADER] == key
    assert message["Subject"] == f"【新舆情预警】[特别重大/重大] {alert.title}"
    body = message.get_content()
    assert "责任单位：区环保局" in body
    assert "签收时限：2026-11-17 10:30" in body  # Asia/Shanghai
    assert f"https://yuqing.example.gov.cn/alerts/{alert.id}" in body
    [row] = box.rows()
    assert row.status == "sent"
    assert box.attempts()[0].detail == f"sent {message['Message-ID']}"


def test_message_id_is_stable_and_distinct() -> None:
    a = email.message_id("alert:1:press-email", "x@d.cn")
    assert a == email.message_id("alert:1:press-email", "x@d.cn")
    assert a != email.message_id("alert:2:press-email", "x@d.cn")


def test_4xx_is_retried_and_the_repeat_has_the_same_message_id(
    smtp_receiver: SmtpReceiver, outbox: Callable[..., Outbox], make_alert, clock
) -> None:
    box = outbox(mail_config(smtp_receiver.port))
    [key] = box.add(make_alert())
    smtp_receiver.answers.append("451 4.3.0 try again later")
    deliverer = box.deliverer()
    assert deliverer.run_once() == 1
    [row] = box.rows()
    assert row.status == "pending" and row.last_error.startswith("SMTP 451")
    clock.now = row.next_attempt_at
    assert deliverer.run_once() == 1
    [message] = smtp_receiver.messages
    assert message["Message-ID"] == email.message_id(key, "yuqing@example.gov.cn")
    assert box.rows()[0].status == "sent"


def test_5xx_is_not_retried(
    smtp_receiver: SmtpReceiver, outbox: Callable[..., Outbox], make_alert
) -> None:
    box = outbox(mail_config(smtp_receiver.port))
    box.add(make_alert())
    smtp_receiver.answers.append("554 5.7.1 rejected")
    box.deliverer().run_once()
    [row] = box.rows()
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("SMTP 554")


def test_no_server_is_retried(outbox: Callable[..., Outbox], make_alert) -> None:
    box = outbox(mail_config(free_port()))
    box.add(make_alert())
    box.deliverer().run_once()
    [row] = box.rows()
    assert row.status == "pending"
    assert "ConnectionRefused" in row.last_error


def test_login_password_comes_from_the_environment(
    outbox: Callable[..., Outbox], make_alert, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("YUQING_SMTP_PASSWORD", raising=False)
    config = mail_config(free_port(), username="yuqing")
    assert config.missing_secrets() == ["YUQING_SMTP_PASSWORD"]
    box = outbox(config)
    box.add(make_alert())
    box.deliverer().run_once()
    assert box.rows()[0].last_error == "environment variable YUQING_SMTP_PASSWORD is not set"
