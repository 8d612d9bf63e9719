"""`yuqing import history FILE`: past items (DESIGN "History for import history"), so a
district's first reports can include the months before yuqing.

Each line is checked on its own: a bad line is reported with its number and reason and
the good ones are stored. Importing is idempotent by id: the same file twice changes
nothing, and a corrected line replaces the item it corrects. Due times are computed with
the current SLA config from `created`, as for a live alert raised then; a response also
counts as the acknowledgement when none is given (as on the live queue).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.config import SEVERITIES
from pipeline.jsonl import read_jsonl
from pipeline.storage.models import Department, HistoryItem
from pipeline.storage.repository import write_rows
from responders.deadlines import DeadlineCalculator, parse_time

#: Stored in one transaction per this many good lines, so a huge file does not hold
#: everything in memory.
BATCH = 1_000
TIMES = ("created", "acknowledged", "responded", "closed")
UPDATED = (
    "title",
    "department_id",
    "severity",
    "created_at",
    "ack_due",
    "response_due",
    "acknowledged_at",
    "responded_at",
    "closed_at",
)


class HistoryLine(BaseModel):
    """One line of the file; fields beyond these are ignored (exports carry more)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=255)
    title: str = Field(min_length=1)
    department: str = Field(min_length=1)
    severity: str
    created: str
    acknowledged: str | None = None
    responded: str | None = None
    closed: str | None = None


class LineError(ValueError):
    """Why one line was rejected."""


@dataclass
class ImportResult:
    lines: int = 0
    stored: int = 0  # new or changed items
    failed: int = 0


def _times(line: HistoryLine, calculator: DeadlineCalculator) -> dict[str, datetime | None]:
    times: dict[str, datetime | None] = {}
    for name in TIMES:
        text = getattr(line, name)
        try:
            times[name] = parse_time(text, calculator.tz) if text else None
        except ValueError:
            raise LineError(
                f"{name}: cannot read {text!r} as an ISO 8601 time (e.g. 2026-10-01T10:00)"
            ) from None
    created = times["created"]
    assert created is not None
    for name in TIMES[1:]:
        when = times[name]
        if when is not None and when < created:
            raise LineError(f"{name} ({text_of(when)}) is before created ({text_of(created)})")
    if times["acknowledged"] is None:
        times["acknowledged"] = times["responded"]
    ack, responded = times["acknowledged"], times["responded"]
    if ack is not None and responded is not None and ack > responded:
        raise LineError(f"acknowledged ({text_of(ack)}) is after responded ({text_of(responded)})")
    return times


def text_of(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def to_row(
    data: dict[str, Any], departments: set[str], calculator: DeadlineCalculator
) -> dict[str, Any]:
    """The `history_items` row of one line, or LineError saying what is wrong."""
    try:
        line = HistoryLine.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        raise LineError(f"{where}: {first['msg']}") from None
    if line.severity not in SEVERITIES:
        raise LineError(f"severity: unknown {line.severity!r}; expected one of {SEVERITIES}")
    if line.department not in departments:
        raise LineError(f"department: unknown {line.department!r} (see config/departments.yaml)")
    times = _times(line, calculator)
    created = times["created"]
    assert created is not None
    due = calculator.due(line.severity, created)
    return {
        "id": line.id,
        "title": line.title,
        "department_id": line.department,
        "severity": line.severity,
        "created_at": created,
        "ack_due": due.ack_due,
        "response_due": due.response_due,
        "acknowledged_at": times["acknowledged"],
        "responded_at": times["responded"],
        "closed_at": times["closed"],
    }


def _batches(
    stream: IO[bytes],
    departments: set[str],
    calculator: DeadlineCalculator,
    result: ImportResult,
    report: Callable[[str], None],
) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for line in read_jsonl(stream):
        result.lines += 1
        try:
            if line.error is not None:
                raise LineError(line.error)
            batch.append(to_row(line.data or {}, departments, calculator))
        except LineError as exc:
            result.failed += 1
            report(f"line {line.number}: {exc}")
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def import_history(
    sessions: sessionmaker[Session],
    stream: IO[bytes],
    calculator: DeadlineCalculator,
    report: Callable[[str], None],
) -> ImportResult:
    """Store every good line of `stream` (JSONL); `report` each bad one as `line N:
    reason`. Each batch of good lines is committed on its own."""
    result = ImportResult()
    with sessions() as session:
        departments = set(session.scalars(sa.select(Department.id)))
    for batch in _batches(stream, departments, calculator, result, report):
        with sessions.begin() as session:
            result.stored += write_rows(session, HistoryItem, batch, update=UPDATED)
    return result
