"""`yuqing sla due` as an operator runs it, and `config check` on holidays.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pipeline.processes import REPO, base_env, yuqing


@pytest.fixture
def env(isolated_env: Path) -> dict[str, str]:
    return base_env(isolated_env / "var")


@pytest.mark.parametrize(
    ("severity", "raised", "expected", "warning"),
    [
        pytest.param(
            "critical",
            "2026-10-01T08:00",
            {
                "ack_due": "2026-10-01T08:30:00+08:00",
                "response_due": "2026-10-01T13:00:00+08:00",
                "press_conference_due": "2026-10-02T08:00:00+08:00",
            },
            b"",
            id="critical-with-press-conference",
        ),
        pytest.param(
            "low",
            "2027-02-04T10:00:00+08:00",
            {"ack_due": "2027-02-09T10:00:00+08:00", "response_due": "2027-02-15T10:00:00+08:00"},
            b"no holiday schedule for 2027",
            id="unknown-year-answers-and-warns",
        ),
    ],
)
def test_prints_one_json_object(
    env: dict[str, str], severity: str, raised: str, expected: dict[str, str], warning: bytes
) -> None:
    out = yuqing(env, "sla", "due", "--severity", severity, "--from", raised)
    assert out.returncode == 0, out.stderr.decode()
    assert json.loads(out.stdout) == expected
    assert warning in out.stderr


def test_default_from_is_now(env: dict[str, str]) -> None:
    out = yuqing(env, "sla", "due", "--severity", "high")
    assert out.returncode == 0, out.stderr.decode()
    assert set(json.loads(out.stdout)) == {"ack_due", "response_due"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--severity", "urgent"], b"--severity: unknown 'urgent'"),
        (["--severity", "low", "--from", "yesterday"], b"--from: cannot read 'yesterday'"),
    ],
)
def test_bad_input_exits_2_with_a_clear_error(
    env: dict[str, str], args: list[str], message: bytes
) -> None:
    out = yuqing(env, "sla", "due", *args)
    assert out.returncode == 2
    assert message in out.stderr and b"Traceback" not in out.stderr
    assert out.stdout == b""


def test_holidays_yaml_is_used_and_checked(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    config.mkdir()
    for name in ("departments.yaml", "sla.yaml"):
        (config / name).write_bytes((REPO / "config" / name).read_bytes())
    holidays = config / "holidays.yaml"
    holidays.write_text("years: {2026: {holidays: [{name: 区庆, date: 2026-11-16}]}}\n")
    env = {**env, "YUQING_CONFIG_DIR": str(config)}
    out = yuqing(env, "sla", "due", "--severity", "low", "--from", "2026-11-13T10:00")
    assert json.loads(out.stdout)["ack_due"] == "2026-11-17T10:00:00+08:00"

    holidays.write_text("years: {2026: {holidays: [{name: 区庆, date: soon}]}}\n")
    check = yuqing(env, "config", "check")
    assert check.returncode == 1
    assert f"{holidays}: years.2026.holidays.0.date:" in check.stderr.decode()
    holidays.write_text("years: {2026: {holidays: [{name: 区庆, date: 2026-13-01}]}}\n")
    check = yuqing(env, "config", "check")
    assert check.returncode == 1 and b"Traceback" not in check.stderr
    assert f"{holidays}: not a valid date" in check.stderr.decode()
    out = yuqing(env, "sla", "due", "--severity", "low")
    assert out.returncode == 2 and b"holidays.yaml" in out.stderr


def test_help(env: dict[str, str]) -> None:
    for args in (["sla"], ["sla", "due"]):
        out = yuqing(env, *args, "--help")
        assert out.returncode == 0 and b"Usage" in out.stdout, out.stderr.decode()
