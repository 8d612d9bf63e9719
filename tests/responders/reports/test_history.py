"""`yuqing import history`: idempotent by id, bad lines reported with number and reason
while the good ones are kept, offset-less times in Asia/Shanghai, and the imported items
in the weekly report."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from pipeline.storage.db import session_factory
from pipeline.storage.models import HistoryItem
from responders.deadlines import DeadlineCalculator
from responders.reports.config import ReportOptions
from responders.reports.history import ImportResult, import_history
from responders.reports.weekly import build_weekly
from tests.pipeline.processes import yuqing
from tests.responders.reports.conftest import AS_OF, SHANGHAI, WEEK

GOOD = [
    {
        "id": "old-1",
        "title": "老旧小区加装电梯进展缓慢",
        "department": "housing",
        "severity": "high",
        "created": "2026-11-17T10:00",
        "acknowledged": "2026-11-17T11:00",
        "responded": "2026-11-18T09:00",
        "closed": "2026-11-19T09:00",
    },
    {
        "id": "old-2",
        "title": "学校周边交通拥堵",
        "department": "education",
        "severity": "critical",
        "created": "2026-11-18T02:00:00+00:00",  # 10:00 in Shanghai
        "responded": "2026-11-18T16:30:00+08:00",  # late: 6.5 h > 5 h; also the ack
    },
    {
        "id": "old-3",
        "title": "公园绿地被占",
        "department": "greening",
        "severity": "low",
        "created": "2026-11-19T09:30",
        "source_system": "12345",  # extra fields are ignored
    },
]
BAD = [
    ("not json at all", "not JSON"),
    ('["a list"]', "expected a JSON object"),
    ({"id": "b1", "department": "housing", "severity": "high", "created": "2026-11-17"},
     "title: Field required"),
    ({**GOOD[0], "id": "b2", "department": "ministry-of-magic"},
     "department: unknown 'ministry-of-magic'"),
    ({**GOOD[0], "id": "b3", "severity": "urgent"}, "severity: unknown 'urgent'"),
    ({**GOOD[0], "id": "b4", "created": "yesterday"}, "created: cannot read 'yesterday'"),
    ({**GOOD[0], "id": "b5", "responded": "2026-11-16T09:00"},
     "responded (2026-11-16T09:00:00+08:00) is before created"),
    ({**GOOD[0], "id": "b6", "acknowledged": "2026-11-18T10:00"},
     "acknowledged (2026-11-18T10:00:00+08:00) is after responded"),
]  # fmt: skip


def jsonl(*lines: Any) -> bytes:
    return "".join(
        (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n"
        for line in lines
    ).encode()


def run_import(
    engine: Engine, data: bytes, deadlines: DeadlineCalculator
) -> tuple[ImportResult, list[str]]:
    messages: list[str] = []
    result = import_history(session_factory(engine), io.BytesIO(data), deadlines, messages.append)
    return result, messages


def test_good_lines_are_stored_once_whatever_the_repeats(
    engine: Engine, session: Session, deadlines: DeadlineCalculator
) -> None:
    result, messages = run_import(engine, jsonl(*GOOD), deadlines)
    assert (result.lines, result.stored, result.failed, messages) == (3, 3, 0, [])
    again, _ = run_import(engine, jsonl(*GOOD), deadlines)
    assert (again.stored, again.failed) == (0, 0)  # idempotent by id

    corrected = {**GOOD[2], "responded": "2026-11-20T10:00"}
    fixed, _ = run_import(engine, jsonl(GOOD[0], corrected), deadlines)
    assert fixed.stored == 1  # only the corrected item changed
    assert session.scalar(sa.select(sa.func.count()).select_from(HistoryItem)) == 3

    one = session.get(HistoryItem, "old-1")
    assert one.created_at == datetime(2026, 11, 17, 10, 0, tzinfo=SHANGHAI)  # no offset: Shanghai
    assert one.ack_due == one.created_at + timedelta(hours=2)  # high: 2 h, 24 h
    assert one.response_due == one.created_at + timedelta(hours=24)
    assert one.closed_at == datetime(2026, 11, 19, 9, 0, tzinfo=SHANGHAI)
    two = session.get(HistoryItem, "old-2")
    assert two.created_at == datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI)
    assert two.acknowledged_at == two.responded_at  # a response also acknowledges


def test_bad_lines_are_reported_by_number_and_reason_and_the_good_kept(
    engine: Engine, session: Session, deadlines: DeadlineCalculator
) -> None:
    lines = [GOOD[0], *(line for line, _ in BAD), GOOD[1]]
    result, messages = run_import(engine, jsonl(*lines), deadlines)
    assert (result.stored, result.failed) == (2, len(BAD))
    assert len(messages) == len(BAD)
    for number, (message, (_, reason)) in enumerate(zip(messages, BAD, strict=True), start=2):
        assert message.startswith(f"line {number}: "), message
        assert reason in message, message
    assert set(session.scalars(sa.select(HistoryItem.id))) == {"old-1", "old-2"}


def test_imported_items_count_in_the_weekly_report(
    engine: Engine, session: Session, deadlines: DeadlineCalculator, options: ReportOptions
) -> None:
    run_import(engine, jsonl(*GOOD), deadlines)
    data = build_weekly(session, WEEK, options, AS_OF).as_json()
    assert data["alerts"] == 3
    assert data["by_severity"] == {"critical": 1, "high": 1, "medium": 0, "low": 1}
    # old-1 responded in 23 h (met), old-2 in 6.5 h (late), old-3 not yet due on Monday.
    assert data["response_on_time_rate"] == 0.5
    assert data["overdue"] == 1
    # old-3's ack was due Friday 09:30 and never came; its response is due next Thursday.
    assert [
        (d["id"], d["ack_on_time_rate"], d["response_on_time_rate"]) for d in data["departments"]
    ] == [
        ("housing", 1.0, 1.0),
        ("education", 0.0, 0.0),
        ("greening", 0.0, None),
    ]
    assert [(n["id"], [r["rule"] for r in n["reasons"]]) for n in data["named"]] == [
        ("education", ["response_on_time_rate", "overdue"])
    ]


# --- the command, as an operator runs it --------------------------------------------------


def test_command_exit_codes(env: dict[str, str], tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(jsonl(GOOD[0], BAD[3][0], GOOD[1]))
    out = yuqing(env, "import", "history", str(mixed))
    assert out.returncode == 1, out.stderr.decode()
    stderr = out.stderr.decode()
    assert "line 2: department: unknown 'ministry-of-magic'" in stderr
    assert "2 items read, 2 new or changed; 1 lines failed" in stderr

    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(*GOOD))
    out = yuqing(env, "import", "history", str(good))
    assert out.returncode == 0, out.stderr.decode()
    assert "3 items read, 1 new or changed; 0 lines failed" in out.stderr.decode()

    assert yuqing(env, "import", "history", str(tmp_path / "missing.jsonl")).returncode == 2
    assert yuqing(env, "import", "history").returncode == 2
