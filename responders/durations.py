"""Durations in the responders' YAML files: `90s`, `10m`, `4h`, `1d` (calendar time).

`pipeline.config.parse_duration` knows m, h and d for SLA deadlines; retries and polling
need seconds too, so the escalation and notification files use this type.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse(value: Any) -> timedelta:
    """`30s`, `10m`, `4h`, `1d` (or a timedelta) → a positive timedelta."""
    if isinstance(value, timedelta):
        span = value
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise ValueError(
                f"expected a number and a unit s, m, h or d (e.g. 30s, 10m, 4h, 1d), got {value!r}"
            )
        span = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    if span <= timedelta(0):
        raise ValueError(f"expected a duration above zero, got {value!r}")
    return span


def _text(span: timedelta) -> str:
    return f"{span.total_seconds():g}s"


Duration = Annotated[timedelta, BeforeValidator(parse), PlainSerializer(_text)]
