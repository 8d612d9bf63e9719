"""Column types that behave the same on SQLite and PostgreSQL.

Every timestamp in yuqing is an aware datetime in UTC once it leaves the database, whatever
the backend: deadlines, SLA reports and the audit log compare times across stages and
processes, and a naive datetime from SQLite next to an aware one from PostgreSQL would make
those comparisons raise (or, worse, silently shift by eight hours for Asia/Shanghai input).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

#: JSON everywhere; JSONB on PostgreSQL so that values can be compared (plain `json` has no
#: equality operator, which `upsert_departments` relies on) and indexed later if needed.
#: None is SQL NULL, not the JSON value `null`, on every path: `IS NULL` finds it (a
#: message board's reply filled in later), and PostgreSQL's batch writes
#: (`repository._json_insert`) store it so.
JSONType = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)

#: The text SQLAlchemy's SQLite `DATETIME` stores (`UTCDateTime.bind_processor`).
_SQLITE_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)


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

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """`process_bind_param`, then the driver type's own conversion, with a shortcut
        for the usual value, an aware `datetime` already in UTC: stages bind tens of
        these per post, and the general path costs two Python calls more each. On SQLite
        the shortcut writes the same text as SQLAlchemy's `DATETIME` (ISO, microseconds,
        space between date and time)."""
        general = super().bind_processor(dialect)
        if general is None:  # pragma: no cover - process_bind_param is overridden
            return None
        # `impl_instance` is the dialect's own type here (SQLite: its DATETIME).
        impl = self.impl_instance
        if dialect.name == "sqlite" and getattr(impl, "_storage_format", None) == _SQLITE_FORMAT:
            as_text = True
        elif dialect.name == "postgresql" and impl.bind_processor(dialect) is None:
            as_text = False  # the driver takes the aware datetime as it is
        else:  # pragma: no cover - another storage format or dialect
            return general

        def process(value: Any) -> Any:
            if value is None:
                return None
            if value.__class__ is datetime and value.tzinfo is UTC:
                if as_text:
                    return value.replace(tzinfo=None).isoformat(" ", "microseconds")
                return value
            return general(value)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
