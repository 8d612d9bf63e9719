"""Reading JSON Lines input robustly: every bad line is reported with its number and
reason, and never stops the good lines (DESIGN: Command line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

MAX_LINE_BYTES = 8 * 1024 * 1024  # a 100,000-character post is ~300 KB; leave room


@dataclass(frozen=True, slots=True)
class Line:
    """One input line: `data` (a JSON object) or `error` (why not)."""

    number: int
    data: dict[str, Any] | None = None
    error: str | None = None


def read_jsonl(stream: IO[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Yield every non-blank line of a binary stream as a parsed object or an error."""
    number = 0
    while True:
        raw = stream.readline(max_line_bytes + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            while (rest := stream.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass  # skip the rest of the over-long line
            yield Line(number, error=f"line longer than {max_line_bytes} bytes")
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Line(number, error=f"not UTF-8 (byte {exc.start}: {raw[exc.start]:#04x})")
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Line(number, error=f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(data, dict):
            yield Line(number, error=f"expected a JSON object, got {type(data).__name__}")
            continue
        yield Line(number, data=data)
