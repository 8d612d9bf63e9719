"""Column types that behave the same on SQLite and PostgreSQL.

Every timestamp in yuqing is an aware datetime in UTC once it leaves the database, whatever
the backend: deadlines, SLA reports and the audit log compare times across stages and
processes, and a naive datetime from SQLite next to an aware one from PostgreSQL would make
those comparisons raise (or, worse, silently shift by eight hours for Asia/Shanghai input).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

#: JSON everywhere; JSONB on PostgreSQL so that values can be compared (plain `json` has no
#: equality operator, which `upsert_departments` relies on) and indexed later if needed.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> datetime:
    """Now, as an aware UTC datetime: the default of every timestamp column."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC and always read back aware in UTC.

    PostgreSQL stores `timestamptz` natively. SQLite has no time zones, so the value is
    converted to UTC and stored without offset; since every stored value is UTC, text order
    is time order and range queries stay correct. Naive datetimes are rejected rather than
    guessed at: the input layer decides what an offset-less time means (Asia/Shanghai for
    posts), storage must not.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; attach a time zone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
