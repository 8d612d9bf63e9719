"""The `notifier` stage: alert changes from the bus to the notification log and out, a
replay sends nothing new, and a notifier killed mid-send (SIGKILL, real processes)
repeats at most the notification in flight, with the same key."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from pipeline.bus import Record
from pipeline.messages import TOPIC_ALERTS, Alert, now_utc
from pipeline.runner import Item, StageContext
from pipeline.settings import Settings
from pipeline.storage import models
from responders.escalation import Escalation
from responders.notify.stage import NotifierStage
from tests.pipeline.processes import REPO, YUQING, base_env, wait_for
from tests.responders.conftest import CONFIG
from tests.responders.notify.conftest import SECRET, SECRET_ENV, HttpReceiver


def write_config(directory: Path, receiver: HttpReceiver, **delivery: str) -> Path:
    """The repository's config with notify.yaml sending every new alert to `receiver`."""
    directory.mkdir()
    for name in ("departments.yaml", "sla.yaml", "holidays.yaml"):
        (directory / name).write_text((CONFIG / name).read_text(encoding="utf-8"), "utf-8")
    notify = {
        "delivery": {
            "poll_every": "0.2s",
            "backoff_initial": "0.5s",
            "timeout": "2s",
            "lease": "3s",
            **delivery,
        },
        "targets": {"ops": {"channel": "webhook", "url": receiver.url, "secret_env": SECRET_ENV}},
        "routes": [{"events": ["created"], "notify": ["ops"]}],
    }
    (directory / "notify.yaml").write_text(yaml.safe_dump(notify), encoding="utf-8")
    return directory


def message(alert: models.Alert, change: str = "created") -> Alert:
    return Alert(
        change_id=f"{alert.id}:{change}",
        id=alert.id,
        change=change,
        department=alert.department_id,
        severity=alert.severity,
        state=alert.state,
        title=alert.title,
        created_at=alert.created_at,
        ack_due=alert.ack_due,
        response_due=alert.response_due,
    )


def item(msg: Alert, offset: int) -> Item[Alert]:
    record = Record(TOPIC_ALERTS, 0, offset, msg.department.encode(), msg.to_json(), 0)
    return Item(record, msg)


def _rows(url: str, sql: str) -> list[Any]:
    """Rows of `sql`, read by a connection of its own (the stages write in processes)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).all())
    finally:
        engine.dispose()


def sent(url: str) -> dict[str, str]:
    """Status by idempotency key."""
    return dict(_rows(url, "SELECT idempotency_key, status FROM notifications"))


@pytest.fixture
def stage(
    tmp_path: Path, sqlite_url: str, http_receiver: HttpReceiver, secret_env: str
) -> NotifierStage:
    """The notifier stage in this process, sending to `http_receiver` (no bus: tests
    hand it batches)."""
    config = write_config(tmp_path / "config", http_receiver)
    settings = Settings(config_dir=config, database_url=sqlite_url, metrics_port=0)
    stage = NotifierStage(StageContext(settings=settings, bus=None))  # type: ignore[arg-type]
    return stage


def test_alert_changes_are_notified_once_even_when_replayed(
    stage: NotifierStage, sqlite_url: str, make_alert, http_receiver: HttpReceiver
) -> None:
    alerts = [make_alert(severity="high"), make_alert(severity="low")]
    batch = [item(message(a), i) for i, a in enumerate(alerts)]
    batch.append(item(message(alerts[0], "changed"), 2))  # not routed anywhere

    assert stage.handle(batch) == []
    assert stage.deliverer.run_once() == 2
    assert stage.handle(batch) == []  # the bus delivers it again after a crash
    assert stage.deliverer.run_once() == 0
    assert sorted(http_receiver.keys()) == sorted(f"alert:{a.id}:created:ops" for a in alerts)
    assert set(sent(sqlite_url).values()) == {"sent"}


CRASHING_SCHEDULER = """
import os, signal
from pipeline.runner import run_stage
from pipeline.settings import load_settings
from responders.notify import log

enqueue, calls = log.enqueue, []

def crash_in_the_fifth(session, rows, now):
    calls.append(1)
    if len(calls) == 5:  # inside the fifth escalation's transaction, before its commit
        os.kill(os.getpid(), signal.SIGKILL)
    return enqueue(session, rows, now)

log.enqueue = crash_in_the_fifth
run_stage("scheduler", load_settings())
"""


def _env(tmp_path: Path, config: Path, sqlite_url: str) -> dict[str, str]:
    env = base_env(tmp_path / "var")
    env.update(YUQING_CONFIG_DIR=str(config), YUQING_DATABASE_URL=sqlite_url)
    env[SECRET_ENV] = SECRET
    return env


def _start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            args or [*YUQING, "stage", "notifier"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert process.returncode == 0, log.read_text(errors="replace")[-3000:]


@pytest.mark.slow
def test_notifier_killed_mid_send_repeats_only_the_one_in_flight(
    tmp_path: Path, sqlite_url: str, make_alert, http_receiver: HttpReceiver
) -> None:
    config = write_config(tmp_path / "config", http_receiver)
    env = _env(tmp_path, config, sqlite_url)
    log = tmp_path / "notifier.log"
    raised = now_utc() - timedelta(hours=1)
    alerts = [make_alert(severity="medium", at=raised) for _ in range(8)]

    from pipeline.bus import open_bus
    from pipeline.runner import ensure_topics

    settings = Settings(config_dir=config, data_dir=tmp_path / "var", database_url=sqlite_url)
    bus = open_bus(settings)
    try:
        ensure_topics(bus, settings)
        with bus.producer() as producer:
            for alert in alerts:
                producer.publish(
                    TOPIC_ALERTS, message(alert).to_json(), alert.department_id.encode()
                )
            producer.flush()
    finally:
        bus.close()

    http_receiver.hold_at = 3  # the third request gets no answer: the notifier dies waiting
    first = _start(env, log)
    try:
        assert http_receiver.held.wait(60), log.read_text(errors="replace")[-3000:]
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        http_receiver.release.set()
        if first.poll() is None:
            first.kill()
    in_flight = http_receiver.received[2].headers["idempotency-key"]
    assert first.returncode == -signal.SIGKILL
    assert sent(sqlite_url)[in_flight] == "pending"

    second = _start(env, log)
    try:
        wait_for(
            lambda: set(sent(sqlite_url).values()) == {"sent"} and len(sent(sqlite_url)) == 8,
            60,
            "every notification sent",
        )
    finally:
        _stop(second, log)

    counts = collections.Counter(http_receiver.keys())
    assert set(counts) == set(sent(sqlite_url)) == {f"alert:{a.id}:created:ops" for a in alerts}
    repeated = {key for key, n in counts.items() if n > 1}
    assert repeated <= {in_flight} and counts[in_flight] <= 2
    for request in http_receiver.received:  # a repeat is signed anew, the key unchanged
        body = request.json()
        assert body["idempotency_key"] == request.headers["idempotency-key"]


@pytest.mark.slow
def test_scheduler_killed_mid_run_misses_and_repeats_nothing(
    tmp_path: Path, sqlite_url: str, make_alert, http_receiver: HttpReceiver
) -> None:
    config = write_config(tmp_path / "config", http_receiver)
    notify = yaml.safe_load((config / "notify.yaml").read_text(encoding="utf-8"))
    notify["routes"] = [{"events": ["ack_late", "response_late"], "notify": ["ops"]}]
    (config / "notify.yaml").write_text(yaml.safe_dump(notify), encoding="utf-8")
    (config / "escalation.yaml").write_text("check_every: 0.2s\n", encoding="utf-8")
    env = _env(tmp_path, config, sqlite_url)
    log = tmp_path / "scheduler.log"
    raised = now_utc() - timedelta(days=2)
    alerts = [make_alert(severity="high", at=raised) for _ in range(6)]
    expected = {
        Escalation(a.id, kind, due).event_key
        for a in alerts
        for kind, due in (("ack_late", a.ack_due), ("response_late", a.response_due))
    }

    crashed = subprocess.run(
        [*YUQING[:1], "-c", CRASHING_SCHEDULER], env=env, cwd=REPO, capture_output=True, timeout=120
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout.decode()[-3000:]
    assert len(escalations(sqlite_url)) == 4  # four committed, the fifth rolled back whole
    assert len(sent(sqlite_url)) == 4

    scheduler = _start(env, log, *YUQING, "stage", "scheduler")
    try:
        wait_for(lambda: len(escalations(sqlite_url)) == len(expected), 60, "every escalation")
    finally:
        _stop(scheduler, log)
    keys = escalations(sqlite_url)
    assert sorted(keys) == sorted(expected)  # each once: none missed, none repeated
    assert set(sent(sqlite_url)) == {f"{key}:ops" for key in expected}
    overdue = overdue_flags(sqlite_url)
    assert overdue == {a.id: True for a in alerts}


def escalations(url: str) -> list[str]:
    sql = "SELECT event_key FROM alert_log WHERE event_key LIKE 'escalation:%'"
    return [key for (key,) in _rows(url, sql)]


def overdue_flags(url: str) -> dict[str, bool]:
    return {id_: bool(flag) for id_, flag in _rows(url, "SELECT id, overdue FROM alerts")}


def test_payload_is_json_in_the_log(stage: NotifierStage, sqlite_url: str, make_alert) -> None:
    """The stored payload is plain JSON (what every attempt sends)."""
    alert = make_alert(severity="critical")
    stage.handle([item(message(alert), 0)])
    [(payload,)] = _rows(sqlite_url, "SELECT payload FROM notifications")
    assert json.loads(payload)["alert"]["severity_label"] == "特别重大/重大"
