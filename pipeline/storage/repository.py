"""Idempotent, batched writes for the stages, and the reads that go with the schema's rules.

The bus delivers at least once, so every stage write must be safe to repeat: a replayed
batch inserts nothing new and changes nothing. Each write here is one dialect-specific
`INSERT ... ON CONFLICT` statement for the whole batch: on PostgreSQL an `INSERT ...
SELECT` from the rows sent as one JSON array (one statement run, whatever the batch's
size), on SQLite an executemany of one prepared statement.

Rows are plain dicts keyed by column name (an unknown key is an error, so a typo does not
silently drop data). They are written in primary-key order, so two workers writing
overlapping batches on PostgreSQL lock rows in the same order and cannot deadlock.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache, partial
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_json
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from pipeline.storage.models import (
    SYSTEM_ACTOR,
    AlertLogEntry,
    Base,
    Classification,
    Department,
    Post,
)

Row = Mapping[str, Any]


def write_rows(
    session: Session,
    model: type[Base],
    rows: Iterable[Row],
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] = (),
    touch: Sequence[str] = (),
    keep_order: bool = False,
) -> int:
    """Insert `rows` into `model`'s table, resolving conflicts on the `conflict` columns.

    With no `update` columns, a row whose key already exists is skipped (insert-or-ignore).
    With `update` columns, an existing row takes those columns from the incoming row, but
    only when one of them actually differs; `touch` columns (such as `updated_at`) are then
    set too, without counting as a difference. Returns the number of rows inserted or
    changed, so a repeated write returns 0.

    `conflict` defaults to the primary key and must name a primary key or unique
    constraint. Rows repeating a key within one call are collapsed first (the first is kept
    when ignoring, the last when updating), as the database would do one after the other.
    Rows are written in key order unless `keep_order` (for logs, where order is meaning).
    Column defaults apply to keys a row leaves out. The session's transaction is used and
    not committed: a stage commits the batch together with its other writes.
    """
    return _rowcount(
        session.execute, _plan(session, model, rows, conflict, update, touch, keep_order)
    )


def write_rows_returning(
    session: Session,
    model: type[Base],
    rows: Iterable[Row],
    returning: Sequence[str],
    *,
    conflict: Sequence[str] | None = None,
    update: Sequence[str] = (),
    touch: Sequence[str] = (),
    keep_order: bool = False,
) -> list[sa.Row[Any]]:
    """Like `write_rows`, but returns the `returning` columns of each row inserted or
    changed, for a caller that must act on exactly the new rows (e.g. publish new alerts).
    On SQLite the batch goes as multi-row VALUES statements (SQLAlchemy's "insertmanyvalues"),
    since an executemany returns nothing there."""
    table: sa.Table = model.__table__  # type: ignore[assignment]
    columns = [table.c[name] for name in returning]
    return [
        row
        for statement, params in _plan(session, model, rows, conflict, update, touch, keep_order)
        for row in session.execute(statement.returning(*columns), params)
    ]


Plan = list[tuple["sqlite.Insert | postgresql.Insert", Any]]


def _plan(
    session: Session,
    model: type[Base],
    rows: Iterable[Row],
    conflict: Sequence[str] | None,
    update: Sequence[str],
    touch: Sequence[str],
    keep_order: bool,
) -> Plan:
    """The `INSERT ... ON CONFLICT` statements for `model` and the parameters of each.

    PostgreSQL: one statement per batch, `INSERT ... SELECT` from the rows sent as one JSON
    array (`_json_rows`). SQLite: an executemany of one `INSERT ... VALUES` per batch."""
    table: sa.Table = model.__table__  # type: ignore[assignment]
    if conflict == ():  # a plain INSERT: rows as given, a stored key is an error
        batch = [_checked(table, row) for row in rows]
    else:
        conflict = tuple(conflict or (column.name for column in table.primary_key.columns))
        batch = _prepare(table, rows, conflict, keep_last=bool(update), keep_order=keep_order)
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        plans: Plan = []
        for group in _groups(batch, _python_defaults(table)):
            names = tuple(sorted(group[0]))
            statement = _json_insert(table, names, conflict, (*update,), (*touch,), keep_order)
            plans += [
                (statement, {"rows": doc}) for doc in _json_rows(table, names, group, dialect)
            ]
        return plans
    statement = _on_conflict(upsert_insert(session, table), table, conflict, update, touch)
    return [(statement, group) for group in _groups(batch, {})]


def insert_rows(session: Session, model: type[Base], rows: Iterable[Row]) -> None:
    """Insert `rows` as they are, in one statement per batch on PostgreSQL (as
    `write_rows`): a key stored already fails the statement, as an ORM flush would."""
    for statement, params in _plan(session, model, rows, (), (), (), True):
        session.execute(statement, params)


def update_rows(session: Session, model: type[Base], rows: Iterable[Row]) -> int:
    """Update rows by primary key: each row gives its key and the columns to set, in
    key order. PostgreSQL: one `UPDATE ... FROM` the rows sent as one JSON array per
    batch (an ORM flush updates row by row); SQLite: an executemany. Returns how many
    rows were updated."""
    table: sa.Table = model.__table__  # type: ignore[assignment]
    key = tuple(column.name for column in table.primary_key.columns)
    batch = _prepare(table, rows, key, keep_last=True, keep_order=False)
    dialect = session.get_bind().dialect
    plans: list[tuple[Any, Any]] = []
    for group in _groups(batch, {}):
        names = tuple(sorted(set(group[0]) - set(key)))
        if not names:
            continue
        if dialect.name == "postgresql":
            statement = _json_update(table, key, names)
            docs = _json_rows(table, (*key, *names), group, dialect)
            plans += [(statement, {"rows": doc}) for doc in docs]
            continue
        update = (
            sa.update(table)
            .where(*(table.c[k] == sa.bindparam(f"k_{k}") for k in key))
            .values({n: sa.bindparam(f"v_{n}", type_=table.c[n].type) for n in names})
        )
        params = [
            {**{f"k_{k}": r[k] for k in key}, **{f"v_{n}": r[n] for n in names}} for r in group
        ]
        plans.append((update, params))
    return _rowcount(session.connection().execute, plans)


def _rowcount(execute: Callable[..., Any], plans: Sequence[tuple[Any, Any]]) -> int:
    """Run the plans; the rows they inserted or changed. psycopg reports the summed
    rowcount of an executemany (SQLite's path), but SQLAlchemy only keeps it when asked
    to (`preserve_rowcount`)."""
    options = {"preserve_rowcount": True}
    return sum(
        execute(statement, params, execution_options=options).rowcount
        for statement, params in plans
    )


@lru_cache(maxsize=64)
def _json_update(table: sa.Table, key: tuple[str, ...], names: tuple[str, ...]) -> sa.TextClause:
    """PostgreSQL: `UPDATE t SET c = r.c, ... FROM jsonb_populate_recordset(NULL::t,
    :rows) AS r WHERE t.key = r.key` (or `json_…`: `_populate`; names are the model's
    own, quoted)."""
    quote = postgresql.dialect().identifier_preparer
    name = quote.format_table(table)
    sets = ", ".join(f"{quote.quote(n)} = r.{quote.quote(n)}" for n in names)
    match = " AND ".join(f"{name}.{quote.quote(k)} = r.{quote.quote(k)}" for k in key)
    return sa.text(f"UPDATE {name} SET {sets} FROM {_populate(table)} AS r WHERE {match}")


def _groups(
    batch: list[dict[str, Any]], defaults: Mapping[str, Callable[[], Any]]
) -> list[list[dict[str, Any]]]:
    """A batch needs the same keys in every row; rows that leave out different optional
    columns (to get their defaults) go in separate statements, usually just one. Python-side
    column `defaults` are filled in first where a statement of our own must apply them."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in batch:
        for name, default in defaults.items():
            if name not in row:
                row[name] = default()
        groups.setdefault(frozenset(row), []).append(row)
    return list(groups.values())


def _on_conflict(
    insert: sqlite.Insert | postgresql.Insert,
    table: sa.Table,
    conflict: Sequence[str] | None,
    update: Sequence[str],
    touch: Sequence[str],
) -> sqlite.Insert | postgresql.Insert:
    """`insert` with its `ON CONFLICT` clause (`()` for none: a plain INSERT)."""
    if not conflict:
        return insert
    if not update:
        return insert.on_conflict_do_nothing(index_elements=conflict)
    excluded = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=conflict,
        set_={name: excluded[name] for name in (*update, *touch)},
        where=sa.or_(*(table.c[name].is_distinct_from(excluded[name]) for name in update)),
    )


@lru_cache(maxsize=256)
def _json_insert(
    table: sa.Table,
    names: tuple[str, ...],
    conflict: tuple[str, ...],
    update: tuple[str, ...],
    touch: tuple[str, ...],
    keep_order: bool,
) -> postgresql.Insert:
    """PostgreSQL: `INSERT INTO t (names) SELECT names FROM jsonb_populate_recordset(NULL::t,
    :rows) ... ON CONFLICT ...` (or `json_…`: `_populate`). The server turns each JSON
    value into its column's type (timestamps from ISO text, JSON columns as they are,
    `bytea` from `\\x` hex).

    One statement rather than an executemany of one row each: ~2-9 µs a row of client
    CPU against ~15-25 (psycopg sends, and SQLAlchemy processes, every row's parameters
    one by one), and ~10 µs a row less on the server (one executor run, not one a row).
    `keep_order` keeps the rows' order (a log's serial ids follow it) explicitly."""
    quoted = postgresql.dialect().identifier_preparer
    source = sa.text(f"{_populate(table)} WITH ORDINALITY AS r")
    select = sa.select(*(sa.literal_column(f"r.{quoted.quote(name)}") for name in names))
    select = select.select_from(source)
    if keep_order:
        select = select.order_by(sa.literal_column("r.ordinality"))
    insert = postgresql.insert(table).from_select(list(names), select)
    return _on_conflict(insert, table, conflict, update, touch)  # type: ignore[return-value]


def _populate(table: sa.Table) -> str:
    """The rows of `:rows` as records of `table`: `jsonb_populate_recordset`, or
    `json_populate_recordset` for a table without JSON columns. Parsing into `jsonb`
    sorts every object's keys: on `alerts` (21 columns) that up to doubles the step,
    5–14 µs a row on the test server, while `json` is read as it comes. A JSON column's value,
    though, arrives from `json` as text to parse again (the classifications'
    explanations cost more that way than the sort saves)."""
    kind = "jsonb" if any(isinstance(c.type, sa.JSON) for c in table.columns) else "json"
    name = postgresql.dialect().identifier_preparer.format_table(table)
    return f"{kind}_populate_recordset(NULL::{name}, CAST(:rows AS {kind}))"


#: Largest JSON document a statement carries (PostgreSQL's `jsonb` holds 256 MB at
#: most): a batch of long posts is sent in parts under it.
MAX_JSON_BYTES = 32 << 20


def _json_rows(
    table: sa.Table, names: Sequence[str], rows: list[dict[str, Any]], dialect: sa.Dialect
) -> list[str]:
    """The rows as JSON arrays for `_json_insert`, one for the batch unless it would
    pass `MAX_JSON_BYTES` (then halves, in order): each value as its column's type
    would bind it (aware timestamps in UTC; a naive one is refused as on any path), JSON
    columns as they are, bytes as `\\x` hex, NaN and infinities as text PostgreSQL reads."""
    for name, convert in _json_converters(table, dialect, names):
        try:
            for row in rows:
                row[name] = convert(row[name])
        except (TypeError, ValueError) as exc:  # wrapped as SQLAlchemy wraps a bind error
            message = f"({type(exc).__name__}) {exc} (column {table.name}.{name})"
            raise sa.exc.StatementError(message, None, None, exc) from exc
    return _json_parts(rows)


def _json_parts(rows: list[dict[str, Any]]) -> list[str]:
    doc = to_json(rows, inf_nan_mode="strings")
    if len(doc) <= MAX_JSON_BYTES or len(rows) == 1:
        return [doc.decode("utf-8")]
    half = len(rows) // 2
    return _json_parts(rows[:half]) + _json_parts(rows[half:])


def _json_converters(
    table: sa.Table, dialect: sa.Dialect, names: Sequence[str]
) -> list[tuple[str, Callable[[Any], Any]]]:
    out: list[tuple[str, Callable[[Any], Any]]] = []
    for name in names:
        column_type = table.c[name].type
        if isinstance(column_type, sa.JSON):
            continue  # serialised as it is, with the rest of the row
        if isinstance(column_type, sa.LargeBinary):
            out.append((name, _bytea_hex))
        elif (process := column_type._cached_bind_processor(dialect)) is not None:
            out.append((name, process))
    return out


def _bytea_hex(value: bytes | None) -> str | None:
    return None if value is None else "\\x" + bytes(value).hex()


@lru_cache(maxsize=128)
def _python_defaults(table: sa.Table) -> dict[str, Callable[[], Any]]:
    """The Python-side column defaults (`default=`), which SQLAlchemy applies to an
    `INSERT ... VALUES` it renders but not to an `INSERT ... SELECT`."""
    out: dict[str, Callable[[], Any]] = {}
    for column in table.columns:
        default = column.default
        if default is None or not isinstance(default, sa.ColumnDefault):
            continue
        if default.is_callable:
            out[column.name] = partial(default.arg, None)  # wrapped to take a context
        elif default.is_scalar:
            out[column.name] = partial(copy.copy, default.arg)
    return out


def one_of(
    session: Session, column: sa.ColumnElement[Any], values: Iterable[int] | Iterable[str]
) -> sa.ColumnElement[bool]:
    """`column` is one of `values` (ints or strs, thousands of them), as one array: on
    PostgreSQL an array literal written into the statement, on SQLite a JSON array
    parameter read by `json_each`. The index on `column` serves the lookup.

    An `IN` list renders and binds one parameter per value (SQLAlchemy's per-value work
    cost the responder ~5 % of its time; a 500-id lookup on PostgreSQL took 2.6 ms of
    the stage's CPU against 0.5). On PostgreSQL the array is a literal, not a bound
    parameter: psycopg prepares a statement it has run five times, and the server then
    may keep a generic plan made without the values (and while a table was small). As
    a parameter, that made the server's CPU a post grow from ~250 to ~550 µs over a
    30,000-post run; a literal is a constant the planner sees, every time."""
    values = list(values)
    if not values or not isinstance(values[0], str):  # one kind, as the column's
        return _one_of_ints(session, column, ",".join(map(str, map(int, values))))
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _any_of_array(column, _array_literal(values))
    if dialect == "sqlite":
        return _in_json_array(column, json.dumps(values))
    raise NotImplementedError(f"value lists need SQLite or PostgreSQL, not {dialect}")


def one_of_listed(
    session: Session, column: sa.ColumnElement[Any], listed: str
) -> sa.ColumnElement[bool]:
    """`one_of` for integers already written out, in decimal, comma-separated
    ("3,17,254"; "" for none): the event store's fingerprint probes come so from C
    (`responders._native.probes`, tens of thousands a batch). Anything but digits and
    commas is refused: the text goes into the statement."""
    if not (listed.isascii() and listed.replace(",", "").isdigit()) and listed:
        raise ValueError("one_of_listed takes decimal digits separated by commas")
    return _one_of_ints(session, column, listed)


def _one_of_ints(
    session: Session, column: sa.ColumnElement[Any], listed: str
) -> sa.ColumnElement[bool]:
    """`one_of` for integers written out and comma-separated (by the callers above)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _any_of_array(column, "{" + listed + "}")
    if dialect == "sqlite":
        return _in_json_array(column, "[" + listed + "]")
    raise NotImplementedError(f"value lists need SQLite or PostgreSQL, not {dialect}")


def _any_of_array(column: sa.ColumnElement[Any], literal: str) -> sa.ColumnElement[bool]:
    """PostgreSQL: `column = ANY(literal::type[])`, the literal written into the statement."""
    listed = sa.bindparam(None, literal, type_=sa.String, literal_execute=True)
    return column == sa.any_(sa.cast(listed, ARRAY(column.type)))


def _in_json_array(column: sa.ColumnElement[Any], array: str) -> sa.ColumnElement[bool]:
    """SQLite: `column IN (SELECT value FROM json_each(array))`, the array a parameter."""
    listed = sa.func.json_each(sa.bindparam(None, array, type_=sa.String))
    return column.in_(sa.select(listed.table_valued("value").c.value))


def _array_literal(values: list[str]) -> str:
    """Strings as a PostgreSQL array literal: each quoted, with backslash and double
    quote escaped (anything else, commas and braces included, is literal). Keys rarely
    hold either, and then the whole literal is two joins in C (escaping each value in
    Python cost the responder ~5 % of its time)."""
    if '"' in (whole := "".join(values)) or "\\" in whole:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'


def upsert_insert(session: Session, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    """The `INSERT` construct of the session's dialect, which knows `ON CONFLICT`."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"idempotent writes need SQLite or PostgreSQL, not {dialect}")


def _prepare(
    table: sa.Table,
    rows: Iterable[Row],
    conflict: Sequence[str],
    *,
    keep_last: bool,
    keep_order: bool,
) -> list[dict[str, Any]]:
    """Validated copies of `rows`, one per conflict key, in key order unless `keep_order`.

    Key order matters on PostgreSQL: two transactions inserting overlapping keys in
    different orders can each wait for the other's row lock; in one order they cannot.
    """
    prepared: list[dict[str, Any]] = []
    position: dict[tuple[Any, ...], int] = {}
    for row in map(partial(_checked, table), rows):
        key = tuple(row.get(name) for name in conflict)
        if any(value is None for value in key):  # NULL never conflicts (e.g. no event_key)
            prepared.append(row)
        elif key not in position:
            position[key] = len(prepared)
            prepared.append(row)
        elif keep_last:
            prepared[position[key]] = row
    if keep_order:
        return prepared
    keyed = sorted(position.items(), key=_key_order(position))
    keyed_positions = set(position.values())
    keyless = [row for i, row in enumerate(prepared) if i not in keyed_positions]
    return [prepared[i] for _, i in keyed] + keyless


def _checked(table: sa.Table, row: Row) -> dict[str, Any]:
    """A copy of `row`, whose keys must all be columns of `table`."""
    if not _column_names(table) >= row.keys():
        unknown = set(row) - _column_names(table)
        raise ValueError(f"{table.name} has no column(s) {', '.join(sorted(unknown))}")
    return dict(row)


@lru_cache(maxsize=128)
def _column_names(table: sa.Table) -> frozenset[str]:
    return frozenset(table.c.keys())


def _key_order(
    position: Mapping[tuple[Any, ...], int],
) -> Callable[[tuple[tuple[Any, ...], int]], tuple[Any, ...]]:
    """The sort key of `_prepare`: keys compared as text. Keys of text only (ids, the
    usual case) are compared as they are, which is the same order without converting
    every value."""
    if all(value.__class__ is str for key in position for value in key):
        return itemgetter(0)
    return lambda item: tuple(map(str, item[0]))


def stored_post_ids(session: Session, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are stored already. In the pipeline `persist` has usually stored a
    post before the classifier and the responder see it: they read first and insert only
    the others, since a read takes no write lock (SQLite) where an insert-or-ignore does."""
    if not ids:
        return set()
    return set(session.scalars(sa.select(Post.id).where(one_of(session, Post.id, ids))))


def upsert_posts(session: Session, rows: Iterable[Row]) -> int:
    """Store posts by id, ignoring ids already stored; returns how many were new.

    A post is evidence: a redelivered or recrawled copy never overwrites the stored one.
    One thing is added to it: a message board's official reply, crawled after the
    question was stored, fills the stored post's empty `reply` (a stored reply stays).
    """
    rows = list(rows)
    new = write_rows(session, Post, rows)
    replies = [{"b_id": r["id"], "b_reply": r["reply"]} for r in rows if r.get("reply")]
    if replies:
        table = Post.__table__
        session.connection().execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"), table.c.reply.is_(None))
            .values(reply=sa.bindparam("b_reply", type_=table.c.reply.type)),
            replies,
        )
    return new


def upsert_classifications(session: Session, rows: Iterable[Row]) -> int:
    """Store classifications by (post id, model version), ignoring ones already stored.

    Returns how many were new. A replay keeps the first `classified_at`, so replaying an
    old model's output cannot make it current again over a newer model's.
    """
    return write_rows(session, Classification, rows)


def upsert_departments(session: Session, rows: Iterable[Row]) -> int:
    """Insert departments, or update `name`, `remit` and `active` of existing ones.

    Returns how many were inserted or changed; `updated_at` moves only on a real change, so
    syncing an unchanged `departments.yaml` at every start writes nothing.
    """
    return write_rows(
        session, Department, rows, update=("name", "remit", "active"), touch=("updated_at",)
    )


def append_audit(
    session: Session,
    *,
    action: str,
    actor: str = SYSTEM_ACTOR,
    alert_id: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
    event_key: str | None = None,
) -> bool:
    """Append one entry to the audit log; returns False if `event_key` was already logged.

    Stages pass an `event_key` derived from what happened (e.g. `"raised:<alert id>"`), so a
    replayed message logs it once; a person's actions leave it None and always append.
    """
    row: dict[str, Any] = {
        "action": action,
        "actor": actor,
        "alert_id": alert_id,
        "from_state": from_state,
        "to_state": to_state,
        "detail": dict(detail) if detail is not None else None,
        "event_key": event_key,
    }
    if at is not None:
        row["at"] = at
    return append_audit_entries(session, [row]) == 1


def logged_event_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """The audit `event_key`s among `keys` that are logged already (a stage's replay)."""
    if not keys:
        return set()
    column = AlertLogEntry.event_key
    return set(session.scalars(sa.select(column).where(one_of(session, column, keys))))


def append_audit_entries(session: Session, rows: Iterable[Row]) -> int:
    """Append many audit entries in one statement (columns as for `append_audit`); returns
    how many were appended, leaving out those whose `event_key` was already logged."""
    return write_rows(session, AlertLogEntry, rows, conflict=("event_key",), keep_order=True)


def current_classifications(
    post_ids: Iterable[str] | None = None,
) -> sa.Select[tuple[Classification]]:
    """A query for the current classification of each post (of `post_ids`, if given).

    Current means the newest `classified_at`; a tie goes to the greater model version.
    Execute it with `session.scalars(...)`; the result are `Classification` objects.
    """
    ranked = sa.select(
        Classification,
        sa.func.row_number()
        .over(
            partition_by=Classification.post_id,
            order_by=(Classification.classified_at.desc(), Classification.model_version.desc()),
        )
        .label("rank"),
    )
    if post_ids is not None:
        ranked = ranked.where(Classification.post_id.in_(list(post_ids)))
    subquery = ranked.subquery()
    current = aliased(Classification, subquery)
    return sa.select(current).where(subquery.c.rank == 1)


def current_classification(session: Session, post_id: str) -> Classification | None:
    """The current classification of one post, or None if it was never classified."""
    return session.scalars(
        sa.select(Classification)
        .where(Classification.post_id == post_id)
        .order_by(Classification.classified_at.desc(), Classification.model_version.desc())
        .limit(1)
    ).first()
