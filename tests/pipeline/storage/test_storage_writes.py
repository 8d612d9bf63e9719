"""Idempotent writes, and the schema rules the database itself enforces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from pipeline.storage import repository
from pipeline.storage.models import (
    Alert,
    AlertLogEntry,
    Classification,
    Department,
    Event,
    Post,
    User,
)
from pipeline.storage.repository import (
    _key_order,
    append_audit,
    append_audit_entries,
    current_classification,
    current_classifications,
    insert_rows,
    one_of,
    one_of_listed,
    stored_post_ids,
    update_rows,
    upsert_classifications,
    upsert_departments,
    upsert_posts,
    write_rows,
    write_rows_returning,
)
from pipeline.storage.types import UTCDateTime

SHANGHAI = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=SHANGHAI)


def post(post_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": post_id,
        "source": "forum-a",
        "channel": "discuz",
        "text": f"工地扬尘 {post_id}",
        "fetched_at": T0,
        **fields,
    }


def classification(post_id: str, version: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "post_id": post_id,
        "model_version": version,
        "policy_relevant": True,
        "relevance_score": 0.9,
        "sentiment": "negative",
        "sentiment_score": 0.8,
        "departments": [{"id": "environment", "score": 0.8, "role": "lead"}],
        "classified_at": at,
        **fields,
    }


def department(dept_id: str = "environment", **fields: Any) -> dict[str, Any]:
    return {"id": dept_id, "name": "区环保局", "remit": ["空气", "扬尘"], **fields}


def alert(alert_id: str, dedup_key: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": alert_id,
        "department_id": "environment",
        "severity": "medium",
        "title": "工地夜间施工扰民",
        "dedup_key": dedup_key,
        "ack_due": T0 + timedelta(days=1),
        "response_due": T0 + timedelta(hours=48),
        **fields,
    }


def event(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "title": "工地扬尘", "first_seen": T0, "last_seen": T0, **fields}


def count(session: Session, model: type) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model))


# --- posts ------------------------------------------------------------------------------


def test_upsert_posts_is_idempotent_and_counts_new_rows(session: Session) -> None:
    assert upsert_posts(session, [post("p1"), post("p2"), post("p3")]) == 3
    assert upsert_posts(session, [post("p1"), post("p2"), post("p3")]) == 0
    assert upsert_posts(session, [post("p3", text="changed"), post("p4")]) == 1
    session.commit()

    assert count(session, Post) == 4
    assert session.get(Post, "p3").text == "工地扬尘 p3"  # a stored post is never overwritten


def test_a_later_official_reply_fills_the_stored_post(session: Session) -> None:
    """The question is stored first; the crawler re-publishes it once the official
    reply is on the board. The reply is added; a stored reply is never replaced."""
    first = {"text": "已转相关部门办理。", "by": "区城管委"}
    upsert_posts(session, [post("q1"), post("q2", reply={"text": "已回复"})])
    assert upsert_posts(session, [post("q1", reply=first), post("q2", reply={"text": "改"})]) == 0
    upsert_posts(session, [post("q1")])  # a later copy without it removes nothing
    session.commit()
    assert session.get(Post, "q1").reply == first
    assert session.get(Post, "q2").reply == {"text": "已回复"}
    assert session.get(Post, "q1").text == "工地扬尘 q1"


def test_stored_post_ids_reads_a_long_list(session: Session) -> None:
    upsert_posts(session, [post(f"p{i}") for i in range(0, 1200, 2)])
    session.commit()
    asked = [f"p{i}" for i in range(1200)]  # one lookup, however many
    assert stored_post_ids(session, asked) == {f"p{i}" for i in range(0, 1200, 2)}
    assert stored_post_ids(session, []) == set()


def test_one_of_matches_a_long_list(session: Session) -> None:
    """Thousands of values as one parameter; the empty list matches nothing."""
    upsert_departments(session, [department(f"d{i}") for i in range(40)])
    session.flush()
    number = sa.cast(sa.func.substr(Department.id, 2), sa.Integer)
    wanted = list(range(0, 40, 3)) + list(range(1000, 6000))

    def matching(values: list[int]) -> set[str]:
        query = sa.select(Department.id).where(one_of(session, number, values))
        return set(session.scalars(query))

    assert matching(wanted) == {f"d{i}" for i in range(0, 40, 3)}
    assert matching([]) == set()

    def matching_listed(listed: str) -> set[str]:
        query = sa.select(Department.id).where(one_of_listed(session, number, listed))
        return set(session.scalars(query))

    assert matching_listed(",".join(map(str, wanted))) == matching(wanted)
    assert matching([-3, 0, 3]) == {"d0", "d3"}  # negative numbers stay numbers
    assert matching_listed("") == set()
    for bad in ("1,2)", "1;DROP", "'1'", "１", "1.5"):
        with pytest.raises(ValueError, match="digits"):
            one_of_listed(session, number, bad)


def test_one_of_writes_the_array_into_the_postgresql_statement() -> None:
    """No bound parameter left: a prepared statement's generic plan, made without the
    values, cannot be chosen for it (see `one_of`)."""

    class PostgresSession:  # what `one_of` asks of a session: its dialect
        dialect = postgresql.dialect()

        def get_bind(self) -> PostgresSession:
            return self

    condition = one_of(PostgresSession(), Post.id, ["a'b", "c"])  # type: ignore[arg-type]
    compiled = (
        sa.select(Post.id)
        .where(condition)
        .compile(dialect=postgresql.dialect(), compile_kwargs={"render_postcompile": True})
    )
    assert compiled.params == {}
    assert """CAST('{"a''b","c"}' AS VARCHAR""" in str(compiled)


def test_one_of_strings_survive_array_syntax(session: Session) -> None:
    """Strings go into a PostgreSQL array literal: quotes, backslashes, commas, braces,
    spaces and the word NULL must come back as themselves."""
    odd = ['a"b', "c\\d", "e,f", "{g}", "中文", "NULL", " spaced ", "", "'q'"]
    upsert_posts(session, [post(i) for i in odd])
    session.flush()
    asked = [*odd, "missing", *(f"x{i}" for i in range(3000))]
    assert stored_post_ids(session, asked) == set(odd)
    query = sa.select(Post.id).where(one_of(session, Post.id, ['a"b', "NULL", "nope"]))
    assert set(session.scalars(query)) == {'a"b', "NULL"}
    # Without a quote or backslash the literal is joined whole: the rest still holds.
    plain = ["e,f", "{g}", "中文", "NULL", " spaced ", "", "'q'"]
    query = sa.select(Post.id).where(one_of(session, Post.id, [*plain, "nope"]))
    assert set(session.scalars(query)) == set(plain)
    for single in (["c\\d"], ["e,f"], [""]):
        query = sa.select(Post.id).where(one_of(session, Post.id, single))
        assert list(session.scalars(query)) == single


def test_upsert_posts_collapses_duplicates_within_a_batch(session: Session) -> None:
    assert upsert_posts(session, [post("p1"), post("p1", text="second copy")]) == 1
    session.commit()
    assert session.get(Post, "p1").text == "工地扬尘 p1"


def test_upsert_posts_mixed_optional_columns_and_defaults(session: Session) -> None:
    rows = [
        post("p1"),
        post(
            "p2",
            truncated=True,
            url="https://example.org/t/2",
            metrics={"views": 10},
            snapshot=b"\x1f\x8b compressed page",
        ),
    ]
    assert upsert_posts(session, rows) == 2
    session.commit()
    p1, p2 = session.get(Post, "p1"), session.get(Post, "p2")
    assert p1.truncated is False and p1.stored_at.tzinfo is UTC
    assert p2.truncated is True and p2.metrics == {"views": 10}
    assert p2.snapshot == b"\x1f\x8b compressed page"


def test_unknown_column_is_an_error(session: Session) -> None:
    with pytest.raises(ValueError, match="author"):
        upsert_posts(session, [post("p1", author="张三")])


def test_empty_batch_writes_nothing(session: Session) -> None:
    assert upsert_posts(session, []) == 0


# --- time and JSON ----------------------------------------------------------------------


def test_aware_datetimes_round_trip_as_utc(session: Session) -> None:
    upsert_posts(session, [post("p1", published_at=T0 - timedelta(hours=1))])
    session.commit()
    session.expire_all()

    stored = session.get(Post, "p1")
    assert stored.fetched_at == T0
    assert stored.fetched_at.tzinfo is UTC
    assert stored.fetched_at.hour == 1 and stored.fetched_at.microsecond == 123456
    assert stored.published_at == T0 - timedelta(hours=1)

    # Comparisons with aware values work in SQL too (SQLite compares UTC text).
    later = session.scalars(sa.select(Post.id).where(Post.fetched_at > T0 - timedelta(minutes=1)))
    assert later.all() == ["p1"]
    assert session.scalars(sa.select(Post.id).where(Post.fetched_at > T0)).all() == []


def test_naive_datetimes_are_rejected(session: Session) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        upsert_posts(session, [post("p1", fetched_at=datetime(2026, 11, 20, 9, 30))])


@pytest.mark.parametrize(
    "dialect", [sqlite.dialect(), postgresql.dialect(), postgresql.psycopg.dialect()]
)
def test_utc_datetime_shortcut_binds_what_the_general_path_binds(dialect: Any) -> None:
    """`UTCDateTime.bind_processor`'s shortcut for aware UTC values gives what
    `process_bind_param` followed by the dialect type's own processor gives."""
    column_type = UTCDateTime().dialect_impl(dialect)
    fast = column_type.bind_processor(dialect)
    general = sa.types.TypeDecorator.bind_processor(column_type, dialect)
    assert fast is not None and general is not None
    values = [
        None,
        datetime(2026, 11, 20, 1, 30, 15, 123456, tzinfo=UTC),
        datetime(2026, 11, 20, 1, 30, tzinfo=UTC),
        datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        T0,
        datetime(2026, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai")),
    ]
    assert [fast(v) for v in values] == [general(v) for v in values]
    for bad in (datetime(2026, 11, 20, 9, 30), "2026-11-20"):
        with pytest.raises((TypeError, ValueError)):
            fast(bad)


def test_rows_are_written_in_key_order_as_text(session: Session) -> None:
    """Keys of text only are sorted as they are, others by their text (the order is
    what keeps concurrent PostgreSQL writers from deadlocking)."""
    texts = {("b",): 0, ("a",): 1, ("c", "a"): 2, ("ä",): 3}
    mixed = {(10, "x"): 0, (9, "x"): 1, (None, "x"): 2}
    for keys in (texts, mixed):
        as_text = sorted(keys.items(), key=lambda item: tuple(map(str, item[0])))
        assert sorted(keys.items(), key=_key_order(keys)) == as_text


def test_json_keeps_chinese_readable(session: Session) -> None:
    upsert_departments(session, [department()])
    session.commit()
    raw = session.scalar(sa.text("SELECT CAST(remit AS TEXT) FROM departments"))
    assert "扬尘" in raw
    assert session.get(Department, "environment").remit == ["空气", "扬尘"]


# --- what a batch carries (PostgreSQL: one JSON array; SQLite: an executemany) ----------


def test_values_round_trip_exactly(session: Session) -> None:
    """Text that JSON must escape, every byte value, floats at their limits and
    infinity come back as they went in."""
    text = '引号" 反斜杠\\ 换行\n 制表\t \u2028 emoji 🚨 </script> \x01 ' + "长" * 5000
    snapshot = bytes(range(256)) * 3
    upsert_posts(session, [post("p1", text=text, snapshot=snapshot, title="{a,b}")])
    write_rows(
        session,
        Event,
        [event("e1", heat=float("inf")), event("e2", heat=5e-324), event("e3", heat=1 / 3)],
    )
    session.commit()
    session.expire_all()
    stored = session.get(Post, "p1")
    assert (stored.text, stored.snapshot, stored.title) == (text, snapshot, "{a,b}")
    heats = dict(session.execute(sa.select(Event.id, Event.heat)).all())
    assert heats == {"e1": float("inf"), "e2": 5e-324, "e3": 1 / 3}


def test_values_round_trip_exactly_through_a_table_without_json_columns(
    session: Session,
) -> None:
    """The same through `alerts`, which PostgreSQL reads as `json` rather than `jsonb`
    (`repository._populate`): inserted, updated, and back as they went in."""
    assert "json_populate_recordset" in repository._populate(Alert.__table__)
    assert "jsonb_populate_recordset" in repository._populate(Event.__table__)
    title = '引号" 反斜杠\\ 换行\n 制表\t \u2028 emoji 🚨 </script> \x01 ' + "长" * 400
    upsert_departments(session, [department()])
    rows = [
        alert("a1", "k1", title=title, heat=float("inf"), overdue=True),
        alert("a2", "k2", heat=5e-324, topic=None, closed_post_count=0),
    ]
    insert_rows(session, Alert, rows)
    later = T0 + timedelta(hours=5, microseconds=7)
    assert update_rows(session, Alert, [{"id": "a2", "heat": 1 / 3, "updated_at": later}]) == 1
    session.commit()
    session.expire_all()
    a1, a2 = session.get(Alert, "a1"), session.get(Alert, "a2")
    assert (a1.title, a1.heat, a1.overdue) == (title, float("inf"), True)
    assert a1.ack_due == rows[0]["ack_due"]
    assert (a2.heat, a2.updated_at, a2.topic, a2.closed_post_count) == (1 / 3, later, None, 0)


def test_left_out_columns_get_their_defaults(session: Session) -> None:
    """Python-side defaults (`default=`) apply to a key a row leaves out, per row group;
    server-side ones (serial ids) too."""
    before = datetime.now(UTC)
    upsert_posts(session, [post("p1"), post("p2", truncated=True, stored_at=T0)])
    append_audit_entries(session, [{"action": "note", "detail": None}])
    session.commit()
    p1, p2 = session.get(Post, "p1"), session.get(Post, "p2")
    assert p1.truncated is False and p1.stored_at >= before
    assert p2.truncated is True and p2.stored_at == T0
    entry = session.scalars(sa.select(AlertLogEntry)).one()
    assert entry.id >= 1 and entry.actor == "system" and entry.at >= before


def test_none_in_a_json_column_is_sql_null(session: Session) -> None:
    """None is SQL NULL, not JSON `null`: `IS NULL` finds it, on every path."""
    upsert_posts(session, [post("p1", reply=None, metrics=None), post("p2", metrics={"views": 1})])
    session.commit()
    empty = session.scalars(sa.select(Post.id).where(Post.reply.is_(None), Post.metrics.is_(None)))
    assert empty.all() == ["p1"]


def test_audit_rows_keep_the_given_order(session: Session) -> None:
    """`keep_order`: ids follow the rows' order, not their keys' order."""
    keys = [f"k{i:03d}" for i in range(300, 0, -1)]
    written = write_rows_returning(
        session,
        AlertLogEntry,
        [{"action": "note", "event_key": key} for key in keys],
        ["event_key", "id"],
        conflict=("event_key",),
        keep_order=True,
    )
    assert [key for key, _ in sorted(written, key=lambda row: row.id)] == keys
    again = [{"action": "note", "event_key": key} for key in ["new", *keys[:5]]]
    assert [row.event_key for row in write_rows_returning(
        session, AlertLogEntry, again, ["event_key"], conflict=("event_key",), keep_order=True
    )] == ["new"]  # fmt: skip


def test_insert_rows_fails_on_a_stored_key(session: Session) -> None:
    """`insert_rows` is a plain INSERT: a key stored already is an error, as an ORM flush
    would make it, and nothing of that batch is written."""
    upsert_posts(session, [post("p1"), post("p2")])
    insert_rows(session, Post, [post("p3"), post("p4")])
    session.commit()
    assert count(session, Post) == 4
    with pytest.raises(IntegrityError):
        insert_rows(session, Post, [post("p5"), post("p1")])
    session.rollback()
    assert count(session, Post) == 4
    with pytest.raises(ValueError, match="author"):
        insert_rows(session, Post, [post("p6", author="张三")])


def test_a_batch_over_the_json_limit_goes_in_parts(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL sends a batch as JSON documents of at most `MAX_JSON_BYTES` (long posts
    would pass `jsonb`'s 256 MB): split in order, the same rows, counts and ids."""
    from pipeline.storage import repository

    monkeypatch.setattr(repository, "MAX_JSON_BYTES", 2_000)
    posts = [post(f"p{i:02d}", text="长" * (100 + i)) for i in range(40)]
    assert upsert_posts(session, posts[:30]) == 30
    assert upsert_posts(session, posts) == 10
    keys = [f"k{i:02d}" for i in range(60, 0, -1)]
    written = write_rows_returning(
        session,
        AlertLogEntry,
        [{"action": "note", "event_key": key, "detail": {"说明": "x" * 50}} for key in keys],
        ["event_key", "id"],
        conflict=("event_key",),
        keep_order=True,
    )
    assert [key for key, _ in sorted(written, key=lambda row: row.id)] == keys
    assert update_rows(session, Post, [{"id": p["id"], "title": "标题" * 20} for p in posts]) == 40
    session.commit()
    assert count(session, Post) == 40
    stored = dict(session.execute(sa.select(Post.id, Post.text)).all())
    assert stored == {p["id"]: p["text"] for p in posts}
    assert set(session.scalars(sa.select(Post.title))) == {"标题" * 20}


def test_update_rows_sets_the_given_columns_by_key(session: Session) -> None:
    """Each row sets its own columns on the row of its key; other columns and rows stay;
    a key not stored updates nothing."""
    write_rows(session, Event, [event("e1", heat=1.0), event("e2", heat=2.0), event("e3")])
    later = T0 + timedelta(hours=3)
    rows = [
        {"id": "e2", "heat": 7.5, "sources": ["微博", "论坛"], "last_seen": later},
        {"id": "e1", "heat": 3.0, "sources": None, "last_seen": later},
        {"id": "e9", "heat": 1.0},
        {"id": "e3", "title": '新标题 "引号"'},
    ]
    assert update_rows(session, Event, rows) == 3
    session.commit()
    session.expire_all()
    e1, e2, e3 = (session.get(Event, i) for i in ("e1", "e2", "e3"))
    assert (e1.heat, e1.sources, e1.last_seen, e1.title) == (3.0, None, later, "工地扬尘")
    assert (e2.heat, e2.sources, e2.last_seen) == (7.5, ["微博", "论坛"], later)
    assert (e3.title, e3.heat, e3.last_seen) == ('新标题 "引号"', 0.0, T0)
    with pytest.raises(ValueError, match="nope"):
        update_rows(session, Event, [{"id": "e1", "nope": 1}])


# --- classifications --------------------------------------------------------------------


def test_classifications_are_idempotent_and_newest_is_current(session: Session) -> None:
    upsert_posts(session, [post("p1"), post("p2"), post("p3")])
    rows = [
        classification("p1", "2026.10.1", T0),
        classification("p1", "2026.11.1", T0 + timedelta(days=1), sentiment="neutral"),
        classification("p2", "2026.10.1", T0),
    ]
    assert upsert_classifications(session, rows) == 3
    # A replay of the old model's output, even stamped later, changes nothing.
    replay = classification("p1", "2026.10.1", T0 + timedelta(days=2))
    assert upsert_classifications(session, [replay]) == 0
    session.commit()

    assert count(session, Classification) == 3
    current = current_classification(session, "p1")
    assert (current.model_version, current.sentiment) == ("2026.11.1", "neutral")
    assert current_classification(session, "p3") is None

    by_post = {c.post_id: c.model_version for c in session.scalars(current_classifications())}
    assert by_post == {"p1": "2026.11.1", "p2": "2026.10.1"}
    only_p1 = session.scalars(current_classifications(["p1", "p3"])).all()
    assert [(c.post_id, c.model_version) for c in only_p1] == [("p1", "2026.11.1")]
    assert [c.model_version for c in session.get(Post, "p1").classifications] == [
        "2026.11.1",
        "2026.10.1",
    ]


def test_classification_needs_its_post(session: Session) -> None:
    with pytest.raises(IntegrityError):
        upsert_classifications(session, [classification("missing", "v1", T0)])
        session.flush()


# --- departments ------------------------------------------------------------------------


def test_upsert_departments_updates_only_on_change(session: Session) -> None:
    rows = [department(), department("water", name="区水务局", remit=["河长制"])]
    assert upsert_departments(session, rows) == 2
    session.commit()
    first = session.get(Department, "environment").updated_at

    assert upsert_departments(session, rows) == 0  # unchanged config: nothing written
    session.commit()
    session.expire_all()
    assert session.get(Department, "environment").updated_at == first

    changed = department(remit=["空气", "扬尘", "噪声"], active=False)
    assert upsert_departments(session, [changed]) == 1
    session.commit()
    session.expire_all()
    stored = session.get(Department, "environment")
    assert stored.remit == ["空气", "扬尘", "噪声"] and stored.active is False
    assert stored.updated_at > first


# --- alerts and the audit log -----------------------------------------------------------


def test_alert_dedup_key_is_unique(session: Session) -> None:
    upsert_departments(session, [department()])
    raised = write_rows_returning(
        session, Alert, [alert("a1", "event-1:environment")], ["id"], conflict=["dedup_key"]
    )
    assert [tuple(row) for row in raised] == [("a1",)]
    # Raising the same alert again under a new id is absorbed by the dedup key...
    assert (
        write_rows(session, Alert, [alert("a2", "event-1:environment")], conflict=["dedup_key"])
        == 0
    )
    session.commit()
    assert count(session, Alert) == 1
    stored = session.get(Alert, "a1")
    assert (stored.state, stored.role, stored.overdue) == ("new", "lead", False)

    # ...and a plain insert of a duplicate key is refused by the database.
    session.add(Alert(**alert("a3", "event-1:environment")))
    with pytest.raises(IntegrityError):
        session.commit()


def test_alert_state_must_be_known(session: Session) -> None:
    upsert_departments(session, [department()])
    with pytest.raises(IntegrityError):
        write_rows(session, Alert, [alert("a1", "k1", state="lost")])
        session.flush()


def test_append_audit_is_idempotent_by_event_key(session: Session) -> None:
    upsert_departments(session, [department()])
    write_rows(session, Alert, [alert("a1", "k1")])
    assert (
        append_audit(
            session,
            action="raised",
            alert_id="a1",
            to_state="new",
            event_key="raised:a1",
            detail={"原因": "扬尘"},
        )
        is True
    )
    assert (
        append_audit(session, action="raised", alert_id="a1", to_state="new", event_key="raised:a1")
        is False
    )
    # A person's actions carry no key and always append; admin actions have no alert.
    assert (
        append_audit(
            session,
            action="ack",
            actor="env-user",
            alert_id="a1",
            from_state="new",
            to_state="acknowledged",
        )
        is True
    )
    assert (
        append_audit(
            session,
            action="ack",
            actor="env-user",
            alert_id="a1",
            from_state="new",
            to_state="acknowledged",
        )
        is True
    )
    assert (
        append_audit_entries(
            session,
            [
                {"action": "users.add", "actor": "admin", "detail": {"username": "lee"}},
                {"action": "overdue", "alert_id": "a1", "event_key": "overdue:a1"},
                {"action": "overdue", "alert_id": "a1", "event_key": "overdue:a1"},
            ],
        )
        == 2
    )
    session.commit()

    entries = session.scalars(sa.select(AlertLogEntry).order_by(AlertLogEntry.id)).all()
    assert [e.action for e in entries] == ["raised", "ack", "ack", "users.add", "overdue"]
    assert entries[0].actor == "system" and entries[0].detail == {"原因": "扬尘"}
    assert entries[0].at.tzinfo is UTC
    assert entries[3].alert_id is None


@pytest.mark.parametrize(
    "statement",
    [
        sa.update(AlertLogEntry).values(action="rewritten"),
        sa.delete(AlertLogEntry),
        sa.delete(AlertLogEntry).where(AlertLogEntry.action == "raised"),
    ],
    ids=["update", "delete-all", "delete-one"],
)
def test_alert_log_is_append_only(session: Session, statement: sa.Executable) -> None:
    append_audit(session, action="raised", event_key="raised:x")
    session.commit()
    with pytest.raises(IntegrityError, match="append-only"):
        session.execute(statement)
    session.rollback()
    assert session.scalar(sa.select(AlertLogEntry.action)) == "raised"


def test_alert_log_cannot_be_truncated_on_postgresql(session: Session, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no TRUNCATE")
    append_audit(session, action="raised")
    session.commit()
    with pytest.raises(IntegrityError, match="append-only"):
        session.execute(sa.text("TRUNCATE alert_log"))


# --- users ------------------------------------------------------------------------------


def test_department_user_needs_a_department(session: Session) -> None:
    upsert_departments(session, [department()])
    session.add(
        User(username="env", password_hash="x", role="department", department_id="environment")
    )
    session.add(User(username="press1", password_hash="x", role="press"))
    session.commit()
    assert session.scalars(sa.select(User.id)).all()

    session.add(User(username="lost", password_hash="x", role="department"))
    with pytest.raises(IntegrityError):
        session.commit()
