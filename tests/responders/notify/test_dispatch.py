"""notify.yaml: which events go where per department, and what the schema refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from pipeline.config import check
from responders.notify.config import NotifyFile
from responders.notify.dispatch import Dispatcher, targets
from responders.notify.message import AlertFacts, Labels
from tests.responders.conftest import CONFIG, T0

HOOK = {"channel": "webhook", "url": "https://hooks.example.cn/y", "secret_env": "YUQING_HOOK"}
CONFIG_DATA: dict[str, Any] = {
    "targets": {
        "press-hook": HOOK,
        "leaders-hook": HOOK,
        "env-hook": HOOK,
        "triage-hook": HOOK,
        "audit-hook": HOOK,
    },
    "audiences": {"press": ["press-hook"], "leadership": ["leaders-hook"]},
    "departments": {"environment": ["env-hook"], "default": ["triage-hook"]},
    "routes": [
        {"events": ["created"], "notify": ["department"]},
        {"events": ["created"], "severities": ["critical", "high"], "notify": ["press"]},
        {"events": ["changed"], "states": ["new"], "notify": ["department"]},
        {"events": ["ack_late"], "notify": ["department", "press"]},
        {"events": ["response_late"], "notify": ["department", "press", "leadership"]},
        {"events": ["response_late"], "departments": ["environment"], "notify": ["audit-hook"]},
    ],
}


def facts(department: str = "environment", severity: str = "medium", state: str = "new"):
    return AlertFacts("al-1", "标题", department, severity, state, T0, T0, T0)


@pytest.fixture(scope="module")
def config() -> NotifyFile:
    return NotifyFile.model_validate(CONFIG_DATA)


@pytest.mark.parametrize(
    ("kind", "alert", "expected"),
    [
        ("created", facts(), ["env-hook"]),
        ("created", facts(severity="critical"), ["env-hook", "press-hook"]),
        ("created", facts(department="water"), ["triage-hook"]),
        ("changed", facts(state="acknowledged"), []),
        ("changed", facts(state="new"), ["env-hook"]),
        ("ack_late", facts(), ["env-hook", "press-hook"]),
        ("response_late", facts(), ["env-hook", "press-hook", "leaders-hook", "audit-hook"]),
        ("response_late", facts(department="water"), ["triage-hook", "press-hook", "leaders-hook"]),
        ("renotify", facts(), []),
    ],
)
def test_routes(config: NotifyFile, kind: str, alert: AlertFacts, expected: list[str]) -> None:
    assert targets(config, kind, alert) == expected


def test_rows_share_one_payload_and_key_by_event_and_target(
    config: NotifyFile, labels: Labels
) -> None:
    rows = Dispatcher(config, labels).rows("ack_late", facts(), "escalation:al-1:ack_late:t")
    assert [r["idempotency_key"] for r in rows] == [
        "escalation:al-1:ack_late:t:env-hook",
        "escalation:al-1:ack_late:t:press-hook",
    ]
    assert all(r["payload"] == rows[0]["payload"] for r in rows)
    assert rows[0]["payload"]["subject"] == "【签收超时】[一般] 标题"
    assert {r["channel"] for r in rows} == {"webhook"}


def test_a_long_key_is_hashed(config: NotifyFile, labels: Labels) -> None:
    [row] = Dispatcher(config, labels).rows("created", facts(), "alert:" + "x" * 300)
    assert row["idempotency_key"].startswith("sha256:") and len(row["idempotency_key"]) == 71


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"targets": {"d": {"channel": "dingtalk", "url": "https://oapi.dingtalk.com/x"}}},
            "url_env",
        ),
        ({"targets": {"hook": {"channel": "webhook", "url": "https://x.cn"}}}, "secret_env"),
        ({"targets": {"hook": {**HOOK, "url_env": "YUQING_X"}}}, "exactly one"),
        ({"targets": {"mail": {"channel": "email", "to": ["a@b.cn"]}}}, "smtp"),
        (
            {
                "targets": {"mail": {"channel": "email", "to": ["nobody"]}},
                "smtp": {"sender": "y@b.cn"},
            },
            "e-mail addresses",
        ),
        ({"targets": {"Bad_Id": HOOK}}, "target id"),
        ({"targets": {"hook": {**HOOK, "secret_env": "HOOK_SECRET"}}}, "pattern"),
        ({"audiences": {"press": ["nowhere"]}}, "unknown target"),
        ({"audiences": {"department": []}}, "reserved"),
        ({"routes": [{"events": ["created"], "notify": ["nobody"]}]}, "neither"),
        ({"routes": [{"events": ["sometime"], "notify": ["department"]}]}, "events"),
        ({"delivery": {"lease": "5s", "timeout": "10s"}}, "lease"),
        ({"delivery": {"poll_every": "soon"}}, "unit"),
    ],
)
def test_schema_refuses(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        NotifyFile.model_validate({"targets": CONFIG_DATA["targets"], **change})


def test_repository_files_pass_config_check() -> None:
    problems = [p for p in check(CONFIG) if "notify.yaml" in p or "escalation.yaml" in p]
    assert problems == []


def test_config_check_names_file_and_key(tmp_path: Path) -> None:
    for name in ("departments.yaml", "sla.yaml"):
        (tmp_path / name).write_text((CONFIG / name).read_text(encoding="utf-8"), "utf-8")
    (tmp_path / "notify.yaml").write_text(
        yaml.safe_dump({"delivery": {"max_attempts": 0}}), encoding="utf-8"
    )
    assert check(tmp_path) == [
        f"{tmp_path / 'notify.yaml'}: delivery.max_attempts: Input should be greater than "
        "or equal to 1"
    ]
