"""Signed webhooks to a real HTTP server: signature, idempotency key, retries with backoff,
giving up, and the attempt log."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from responders.notify import metrics, webhook
from tests.conftest import free_port
from tests.responders.notify.conftest import (
    SECRET,
    SECRET_ENV,
    HttpReceiver,
    Outbox,
    notify_config,
)


def hook(url: str) -> dict[str, dict[str, str]]:
    return {"ops": {"channel": "webhook", "url": url, "secret_env": SECRET_ENV}}


def counter(channel: str, outcome: str | None = None) -> float:
    if outcome is None:
        return metrics.FAILURES.labels(channel)._value.get()
    return metrics.NOTIFICATIONS.labels(channel, outcome)._value.get()


def test_signed_json_with_idempotency_key(
    http_receiver: HttpReceiver, outbox: Callable[..., Outbox], make_alert, secret_env: str
) -> None:
    box = outbox(notify_config(hook(http_receiver.url)))
    alert = make_alert(severity="critical")
    alert.title = "<script>alert(1)</script> 工地扬尘"
    [key] = box.add(alert)
    sent_before = counter("webhook", "sent")

    assert box.deliverer().run_once() == 1

    [request] = http_receiver.received
    headers = request.headers
    assert headers["idempotency-key"] == key
    assert headers["content-type"].startswith("application/json")
    assert webhook.verify(
        SECRET, headers["x-yuqing-timestamp"], request.body, headers["x-yuqing-signature"]
    )
    assert not webhook.verify(
        "wrong", headers["x-yuqing-timestamp"], request.body, headers["x-yuqing-signature"]
    )
    assert abs(int(headers["x-yuqing-timestamp"]) - time.time()) < 60
    body = request.json()
    assert body["idempotency_key"] == key
    assert body["kind"] == "created"
    assert body["alert"]["id"] == alert.id
    assert body["alert"]["title"] == alert.title  # JSON carries the text as it is
    assert body["alert"]["department_name"] == "区环保局"
    assert body["alert"]["link"] == f"https://yuqing.example.gov.cn/alerts/{alert.id}"
    [row] = box.rows()
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    [attempt] = box.attempts()
    assert (attempt.attempt, attempt.outcome, attempt.detail) == (1, "sent", "HTTP 200")
    assert counter("webhook", "sent") == sent_before + 1

    assert box.deliverer().run_once() == 0  # confirmed: never again
    assert len(http_receiver.received) == 1


def test_verify_refuses_an_old_timestamp() -> None:
    body = b'{"a":1}'
    signature = webhook.sign(SECRET, "1000", body)
    assert webhook.verify(SECRET, "1000", body, signature, now=1100)
    assert not webhook.verify(SECRET, "1000", body, signature, now=1000 + 301)
    assert not webhook.verify(SECRET, "soon", body, signature)


def test_retries_5xx_with_exponential_backoff_and_the_same_key(
    http_receiver: HttpReceiver, outbox: Callable[..., Outbox], make_alert, secret_env: str, clock
) -> None:
    box = outbox(notify_config(hook(http_receiver.url)))
    [key] = box.add(make_alert())
    http_receiver.answer(500, 502, 503)
    failures_before = counter("webhook")
    deliverer = box.deliverer()

    waits = []
    for _ in range(3):
        assert deliverer.run_once() == 1
        [row] = box.rows()
        assert row.status == "pending" and row.last_error.startswith("HTTP 5")
        waits.append(row.next_attempt_at - clock.now)
        assert deliverer.run_once() == 0  # not before its time
        clock.now = row.next_attempt_at
    assert waits == [timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=4)]
    assert deliverer.run_once() == 1

    assert http_receiver.keys() == [key] * 4
    [row] = box.rows()
    assert (row.status, row.attempts) == ("sent", 4)
    assert [a.outcome for a in box.attempts()] == ["error", "error", "error", "sent"]
    assert counter("webhook") == failures_before + 3


def test_connection_refused_is_retried(
    outbox: Callable[..., Outbox], make_alert, secret_env: str, clock
) -> None:
    box = outbox(notify_config(hook(f"http://127.0.0.1:{free_port()}/hook")))
    box.add(make_alert())
    assert box.deliverer().run_once() == 1
    [row] = box.rows()
    assert row.status == "pending"
    assert "Connection refused" in row.last_error or "refused" in row.last_error.lower()
    assert row.next_attempt_at == clock.now + timedelta(seconds=1)


def test_backoff_is_capped_and_the_last_attempt_gives_up(
    http_receiver: HttpReceiver, outbox: Callable[..., Outbox], make_alert, secret_env: str, clock
) -> None:
    config = notify_config(hook(http_receiver.url), delivery={"max_attempts": 6})
    box = outbox(config)
    box.add(make_alert())
    http_receiver.default = (503, b"busy")
    failed_before = counter("webhook", "failed")
    deliverer = box.deliverer()
    waits = []
    while deliverer.run_once():
        [row] = box.rows()
        waits.append((row.next_attempt_at - clock.now).total_seconds())
        clock.now = row.next_attempt_at
    [row] = box.rows()
    assert (row.status, row.attempts) == ("failed", 6)
    assert waits[:5] == [1, 2, 4, 8, 8]  # capped at backoff_max
    assert [a.outcome for a in box.attempts()][-1] == "failed"
    assert counter("webhook", "failed") == failed_before + 1


@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_4xx_is_not_retried(
    status: int,
    http_receiver: HttpReceiver,
    outbox: Callable[..., Outbox],
    make_alert,
    secret_env: str,
) -> None:
    box = outbox(notify_config(hook(http_receiver.url)))
    box.add(make_alert())
    http_receiver.answer((status, b"bad request"))
    assert box.deliverer().run_once() == 1
    [row] = box.rows()
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == f"HTTP {status}: bad request"


def test_429_is_retried(
    http_receiver: HttpReceiver, outbox: Callable[..., Outbox], make_alert, secret_env: str
) -> None:
    box = outbox(notify_config(hook(http_receiver.url)))
    box.add(make_alert())
    http_receiver.answer(429)
    box.deliverer().run_once()
    assert box.rows()[0].status == "pending"


def test_a_missing_secret_is_retried_not_sent_unsigned(
    http_receiver: HttpReceiver,
    outbox: Callable[..., Outbox],
    make_alert,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    config = notify_config(hook(http_receiver.url))
    assert config.missing_secrets() == [SECRET_ENV]
    box = outbox(config)
    box.add(make_alert())
    box.deliverer().run_once()
    [row] = box.rows()
    assert row.status == "pending"
    assert row.last_error == f"environment variable {SECRET_ENV} is not set"
    assert http_receiver.received == []


def test_a_claimed_notification_waits_for_its_lease(
    http_receiver: HttpReceiver, outbox: Callable[..., Outbox], make_alert, secret_env: str, clock
) -> None:
    """What a killed notifier leaves: a claim without an outcome. It is repeated, with
    the same key, once the lease runs out, and not before."""
    from responders.notify import log

    box = outbox(notify_config(hook(http_receiver.url)))
    [key] = box.add(make_alert())
    with box.sessions.begin() as session:
        [note] = log.due(session, clock.now, 10)
        assert log.claim(session, note, clock.now, box.config.delivery.lease) is not None
    with box.sessions.begin() as session:  # a second notifier cannot take the same attempt
        assert log.claim(session, note, clock.now, box.config.delivery.lease) is None

    deliverer = box.deliverer()
    assert deliverer.run_once() == 0
    clock.advance(seconds=29)
    assert deliverer.run_once() == 0
    clock.advance(seconds=1)
    assert deliverer.run_once() == 1
    assert http_receiver.keys() == [key]
    attempts = box.attempts()
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, None), (2, "sent")]
