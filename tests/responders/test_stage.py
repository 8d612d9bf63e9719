"""The responder stage: classified posts in, events, alerts and audit rows stored, alert
messages out; replays change nothing; flare-ups reopen; crawled replies count. In
process on SQLite, through the runner on the local bus, and as the real `yuqing run
responder` process on PostgreSQL with a Kafka broker."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from unittest.mock import ANY

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import responders.stage
from pipeline.bus import Record
from pipeline.bus.local import LocalBus
from pipeline.messages import (
    TOPIC_ALERTS,
    TOPIC_POSTS_CLASSIFIED,
    Alert,
    Classification,
    ClassifiedPost,
    DepartmentScore,
    OfficialReply,
    Post,
)
from pipeline.runner import Item, Outgoing, Runner, StageContext, ensure_topics
from pipeline.settings import Settings, load_settings
from pipeline.storage import models
from pipeline.storage.db import session_factory
from responders import queue
from responders.events import EventStore, event_id_for
from responders.rules import Rules
from responders.stage import ResponderStage
from tests.pipeline.processes import REPO, base_env, start, wait_for, yuqing
from tests.responders.conftest import T0, migrated_engine

STORY = (
    "近日，有市民反映本区某工地夜间施工扬尘严重，噪声扰民，"
    "周边居民多次投诉无果，希望有关部门尽快处理。"
)
SOURCES = ["district-weibo", "local-forum", "district-news-rss", "wechat", "toutiao"]
ENV_DEPTS = [("environment", 0.81, "lead"), ("urban-enforcement", 0.42, "co")]


def classified(
    i: int,
    text: str = STORY,
    *,
    minutes: float = 0,
    severity: str = "medium",
    relevance: float = 0.9,
    departments: list[tuple[str, float, str]] = ENV_DEPTS,
    watchlists: list[str] | None = None,
    reply: OfficialReply | None = None,
    source: str | None = None,
    channel: str = "ingest",
    topic: str = "环境保护",
) -> ClassifiedPost:
    at = T0 + timedelta(minutes=minutes)
    post = Post(
        id=f"p{i}",
        source=source or SOURCES[i % len(SOURCES)],
        text=text,
        title=None,
        published_at=at,
        fetched_at=at + timedelta(seconds=30),
        reply=reply,
        channel=channel,
        url=f"https://bbs.example/t/{i}",
    )
    explanation = {"departments": ["扬尘"], **({"watchlists": watchlists} if watchlists else {})}
    return ClassifiedPost(
        post=post,
        classification=Classification(
            post_id=post.id,
            model_version="test",
            policy_relevant=relevance >= 0.5,
            relevance_score=relevance,
            departments=[DepartmentScore(id=d, score=s, role=r) for d, s, r in departments],
            topic=topic,
            sentiment="negative",
            sentiment_score=0.9,
            sensitivity=["切身利益"],
            severity=severity,
            explanation=explanation,
        ),
    )


def items(messages: list[ClassifiedPost]) -> list[Item[ClassifiedPost]]:
    return [
        Item(Record(TOPIC_POSTS_CLASSIFIED, 0, n, m.post.id.encode(), m.to_json(), 0), m)
        for n, m in enumerate(messages)
    ]


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return load_settings(
        config_dir=REPO / "config", data_dir=tmp_path / "var", database_url=sqlite_url
    )


@pytest.fixture
def stage(settings: Settings) -> Iterator[ResponderStage]:
    bus = LocalBus(settings.data_dir / "bus.sqlite3", retention_hours=24)
    stage = ResponderStage(StageContext(settings=settings, bus=bus))
    yield stage
    stage.ctx.engine.dispose()
    bus.close()


def handle(stage: ResponderStage, messages: list[ClassifiedPost]) -> list[Alert]:
    out = stage.handle(items(messages))
    assert {o.topic for o in out} <= {TOPIC_ALERTS}
    assert all(o.key == o.value.department for o in out)
    return [o.value for o in out]


def alerts(session: Session) -> list[models.Alert]:
    session.expire_all()
    return list(session.scalars(sa.select(models.Alert).order_by(models.Alert.role.desc())))


def test_reposts_raise_one_alert_that_grows(stage: ResponderStage, session: Session) -> None:
    first = handle(stage, [classified(0)])
    assert [(m.change, m.department, m.severity, m.state) for m in first] == [
        ("created", "environment", "medium", "new")
    ]
    [alert] = alerts(session)
    assert alert.event_id == event_id_for("p0") and alert.role == "lead"
    assert alert.dedup_key == f"{event_id_for('p0')}:environment"
    due = stage.deadlines.due("medium", alert.created_at)
    assert (alert.ack_due, alert.response_due) == (due.ack_due, due.response_due)

    # 199 reposts within the hour, from five sources: same alert, heat up, severity up to
    # high (heat floor 130) and one more for the topic's spike, never a second alert.
    later = handle(
        stage,
        [
            classified(i, f"转发微博 //@网友{i}: 顶 //@本地: {STORY}", minutes=i * 0.2)
            for i in range(1, 200)
        ],
    )
    lead, co = alerts(session)
    assert lead.heat > 130 and lead.severity == "critical" and lead.id == alert.id
    assert lead.ack_due == lead.created_at + timedelta(minutes=30)  # recomputed
    # Co-responsible departments get their own alert from high on (alert_rules.yaml).
    assert (co.department_id, co.role, co.severity) == ("urban-enforcement", "co", "critical")
    assert sorted((m.change, m.department, m.severity) for m in later) == [
        ("changed", "environment", "critical"),
        ("created", "urban-enforcement", "critical"),
    ]
    entry = queue.alert_log(session, lead.id)[-1]
    assert entry.detail["from_severity"] == "medium"
    assert [r.split(":")[0] for r in entry.detail["reasons"][:3]] == ["classifier", "heat", "spike"]
    assert later[0].sources == sorted(SOURCES)
    heat, updated = lead.heat, lead.updated_at
    assert handle(stage, [classified(500, minutes=50)]) == []  # heat only: no message
    hotter, _ = alerts(session)
    assert hotter.heat > heat and hotter.updated_at > updated
    actions = session.scalars(sa.select(models.AlertLogEntry.action)).all()
    assert sorted(actions) == ["change_severity", "raise", "raise"]


def test_replaying_creates_nothing_and_repeats_change_ids(
    stage: ResponderStage, session: Session
) -> None:
    batch = [classified(i, minutes=i) for i in range(5)] + [
        classified(
            10, "小区门口垃圾堆积无人清理，臭气熏天", departments=[("urban-mgmt", 0.9, "lead")]
        )
    ]
    first = handle(stage, batch)
    assert len(first) == 2
    log_rows = session.scalar(sa.select(sa.func.count()).select_from(models.AlertLogEntry))
    for _ in range(2):
        again = handle(stage, batch)
        assert {m.change_id for m in again} == {m.change_id for m in first}
        assert len(alerts(session)) == 2
        assert (
            session.scalar(sa.select(sa.func.count()).select_from(models.AlertLogEntry)) == log_rows
        )
        event = session.get(models.Event, event_id_for("p0"))
        assert event.post_count == 5


def test_irrelevant_or_none_posts_raise_nothing(stage: ResponderStage, session: Session) -> None:
    assert handle(stage, [classified(0, relevance=0.1, severity="high")]) == []
    assert handle(stage, [classified(1, "今天天气不错，适合出门散步。", severity="none")]) == []
    assert alerts(session) == []
    # ... unless a watchlist rule matched: then it counts whatever the relevance.
    hit = classified(
        2,
        "本区某小区突发火灾，浓烟滚滚",
        relevance=0.1,
        severity="high",
        watchlists=["district-fire-explosion"],
        departments=[("safety", 0.7, "lead")],
    )
    # The watchlist rule names the lead (emergency); the classifier's lead becomes co.
    assert {(m.department, m.severity) for m in handle(stage, [hit])} == {
        ("emergency", "high"),
        ("safety", "high"),
    }


def test_unknown_or_unsure_department_goes_to_triage(
    stage: ResponderStage, session: Session
) -> None:
    handle(stage, [classified(0, departments=[("no-such-dept", 0.9, "lead")])])
    handle(stage, [classified(1, "公园里的路灯坏了很久", departments=[("greening", 0.05, "lead")])])
    assert {a.department_id for a in alerts(session)} == {"gov-office"}


def test_flare_up_reopens_a_closed_alert(stage: ResponderStage, session: Session) -> None:
    handle(stage, [classified(0)])
    [alert] = alerts(session)
    press, dept = queue.Actor("press1", "press"), queue.Actor("env1", "department", "environment")
    queue.act(session, alert.id, dept, "respond", text="已处理", channel="政府网站")
    queue.act(session, alert.id, dept, "close")
    session.commit()
    handle(stage, [classified(1, minutes=60), classified(2, minutes=61)])  # two: not yet
    assert alerts(session)[0].state == "closed"
    [message] = handle(stage, [classified(3, minutes=62)])
    [alert] = alerts(session)
    assert (message.change, message.state, alert.state, alert.reopened_count) == (
        "changed",
        "new",
        "new",
        1,
    )
    entry = queue.alert_log(session, alert.id)[-1]
    assert (entry.action, entry.actor, entry.from_state, entry.to_state) == (
        "reopen",
        "system",
        "closed",
        "new",
    )
    assert entry.detail["new_posts"] == 3
    # Dismissed alerts stay dismissed however hot the event gets.
    queue.act(session, alert.id, press, "dismiss", reason="误报")
    session.commit()
    assert handle(stage, [classified(i, minutes=70 + i) for i in range(10, 20)]) == []
    assert alerts(session)[0].state == "dismissed"


def test_crawled_reply_is_recorded_on_the_alert(stage: ResponderStage, session: Session) -> None:
    handle(stage, [classified(0, channel="message_board", source="district-message-board")])
    answered = classified(
        0,
        channel="message_board",
        source="district-message-board",
        reply=OfficialReply(text="您好，已责成施工单位整改。", time=T0 + timedelta(hours=3)),
    )
    for _ in range(2):  # the re-crawl with the reply, twice
        messages = handle(stage, [answered])
    [alert] = alerts(session)
    # The board answered (T0 + 3 h) before this alert was raised (now): the response
    # counts at the raise, and the audit entry keeps the board's own time.
    assert (alert.state, alert.responded_at) == ("responded", alert.raised_at)
    [entry] = [e for e in queue.alert_log(session, alert.id) if e.action == "respond"]
    assert entry.detail["replied_at"] == (T0 + timedelta(hours=3)).isoformat()
    [response] = session.scalars(sa.select(models.AlertResponse)).all()
    assert (response.channel, response.source, response.link) == (
        "回复网民",
        "crawled",
        "https://bbs.example/t/0",
    )
    assert messages and all(m.state == "responded" for m in messages)


def test_script_text_passes_through_unchanged(stage: ResponderStage, session: Session) -> None:
    text = "<script>alert(1)</script>小区门口垃圾堆积无人清理"
    [message] = handle(stage, [classified(0, text)])
    assert message.title == text
    assert session.get(models.Post, "p0").text == text


# ------------------------------------------------------------------ through the bus


def run_until_drained(runner: Runner, bus: LocalBus, topic: str) -> None:
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        for _ in range(400):
            ends = bus.end_offsets(topic)
            done = bus.committed(topic, runner.stage.group)
            if all((done.get(p) or 0) >= end for p, end in ends.items()):
                break
            runner.stop.wait(0.05)
    finally:
        runner.stop.set()
        thread.join(30)
    assert not thread.is_alive()


def read_alerts(bus: LocalBus, group: str) -> list[Alert]:
    out: list[Alert] = []
    with bus.consumer([TOPIC_ALERTS], group) as consumer:
        for _ in range(20):
            got = consumer.poll(1000, 0.2)
            if not got and out:
                break
            out.extend(Alert.from_json(r.value) for r in got)
    return out


def test_stage_on_the_local_bus_twice(settings: Settings, session: Session) -> None:
    bus = LocalBus(settings.data_dir / "bus.sqlite3", retention_hours=24)
    try:
        ensure_topics(bus, settings)
        with bus.producer() as producer:
            for m in [classified(i, minutes=i) for i in range(40)]:
                producer.publish(TOPIC_POSTS_CLASSIFIED, m.to_json(), m.post.id.encode())
            producer.flush()
        for replay in (False, True):
            if replay:
                bus.reset_offsets(TOPIC_POSTS_CLASSIFIED, "yuqing-responder", to_offset=0)
            stage = ResponderStage(StageContext(settings=settings, bus=bus))
            run_until_drained(Runner(stage, batch_size=7), bus, TOPIC_POSTS_CLASSIFIED)
            stage.ctx.engine.dispose()
        messages = read_alerts(bus, "reader")
    finally:
        bus.close()
    # 40 posts in 40 minutes: hot and a spike of the topic, so lead and co-responsible.
    assert [(a.department_id, a.severity) for a in alerts(session)] == [
        ("environment", "critical"),
        ("urban-enforcement", "critical"),
    ]
    created = [m for m in messages if m.change == "created"]
    assert len({m.change_id for m in created}) == 2
    # The replay repeated change ids, it made no new ones.
    log_ids = {f"{e.alert_id}:{e.id}" for e in session.scalars(sa.select(models.AlertLogEntry))}
    assert {m.change_id for m in messages} <= log_ids


# ------------------------------------------------------------------ parts by topic


def own(n: int, text: str, department: str, topic: str) -> ClassifiedPost:
    """Post `n`, a post of its own (no repost of another), led by `department`."""
    return classified(n, text, departments=[(department, 0.8, "lead")], topic=topic)


def housing(i: int) -> ClassifiedPost:
    return own(
        100 + i, f"第{i}个不同的诉求：小区{i}号楼电梯坏了{'很久' * i}", "housing", "住房保障"
    )


def road(i: int) -> ClassifiedPost:
    return own(
        200 + i,
        f"{i}路公交车{'又' * i}晚点了，第{i}次在站台等了{10 + i}分钟",
        "transport",
        "交通出行",
    )


@pytest.fixture
def pg_stage(tmp_path: Path, pg_schema_url: str) -> Iterator[ResponderStage]:
    migrated_engine(pg_schema_url).dispose()
    settings = load_settings(
        config_dir=REPO / "config", data_dir=tmp_path / "var", database_url=pg_schema_url
    )
    bus = LocalBus(settings.data_dir / "bus.sqlite3", retention_hours=24)
    stage = ResponderStage(StageContext(settings=settings, bus=bus))
    yield stage
    stage.ctx.engine.dispose()
    bus.close()


def topics_of(parts: list[Sequence[Item[ClassifiedPost]]]) -> list[set[str]]:
    return [{i.message.classification.topic or "" for i in part} for part in parts]


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of any size, so that a test's few posts split."""
    monkeypatch.setattr(responders.stage, "MIN_PART", 1)


@pytest.mark.postgres
@pytest.mark.usefixtures("small_parts")
def test_a_batch_splits_by_topic_into_even_parts(pg_stage: ResponderStage) -> None:
    # p0 comes twice, the second time reclassified: both go where its last one goes.
    batch = items(
        [classified(i, minutes=i) for i in range(6)]
        + [housing(i) for i in range(4)]
        + [road(i) for i in range(3)]
        + [classified(0, topic="交通出行")]
    )
    parts = pg_stage.split(batch, 2)
    # 5 of 环境保护, 5 of 交通出行 (p0 twice), 4 of 住房保障: largest first, each to the
    # part with fewest items (ties by topic, then by part).
    assert [sorted({i.message.post.id for i in part}) for part in parts] == [
        ["p0", "p100", "p101", "p102", "p103", "p200", "p201", "p202"],
        ["p1", "p2", "p3", "p4", "p5"],
    ]
    assert [len(p) for p in parts] == [9, 5]
    assert sorted(id(i) for p in parts for i in p) == sorted(id(i) for i in batch)
    assert [len(p) for p in pg_stage.split(batch, 3)] == [5, 5, 4]
    assert pg_stage.split(batch, 1) == [batch]
    assert pg_stage.split(items([classified(i) for i in range(4)]), 2) == [ANY]


@pytest.mark.postgres
def test_a_small_batch_stays_whole(pg_stage: ResponderStage) -> None:
    """Posts trickling in: a part of its own would cost more than it saves."""
    size = 2 * responders.stage.MIN_PART
    half = [classified(i) for i in range(size // 2)]
    assert len(pg_stage.split(items(half + [road(i) for i in range(size // 2 - 1)]), 2)) == 1
    assert len(pg_stage.split(items(half + [road(i) for i in range(size // 2)]), 2)) == 2


@pytest.mark.postgres
@pytest.mark.usefixtures("small_parts")
def test_a_batch_stays_whole_when_events_may_span_topics(pg_stage: ResponderStage) -> None:
    config = pg_stage.rules.config
    clustering = config.clustering.model_copy(update={"same_topic": False})
    pg_stage.rules = Rules(config.model_copy(update={"clustering": clustering}))
    pg_stage.events = EventStore(pg_stage.rules.config)
    batch = items([classified(0), housing(0), road(0)])
    assert pg_stage.split(batch, 2) == [batch]


@pytest.mark.usefixtures("small_parts")
def test_a_batch_stays_whole_on_sqlite(stage: ResponderStage) -> None:
    """SQLite takes one writer at a time: parts would only wait on each other."""
    batch = items([classified(0), housing(0), road(0)])
    assert stage.split(batch, 2) == [batch]


@pytest.mark.postgres
@pytest.mark.usefixtures("small_parts")
@pytest.mark.parametrize("threads", [1, 2])
def test_parts_store_on_postgres_what_the_whole_batch_does(
    pg_stage: ResponderStage, threads: int
) -> None:
    """The same posts through the runner with one thread and with two: the same events,
    alerts and audit rows, and with two, the topics were handled on the part threads."""
    bus, calls = pg_stage.ctx.bus, []
    handle = pg_stage.handle

    def spy(batch: Sequence[Item[ClassifiedPost]]) -> list[Outgoing]:
        calls.append((threading.current_thread().name, topics_of([batch])[0]))
        return handle(batch)

    pg_stage.handle = spy  # type: ignore[method-assign]
    ensure_topics(bus, pg_stage.ctx.settings)
    messages = (
        [classified(i, minutes=i) for i in range(20)]
        + [housing(i) for i in range(5)]
        + [road(i) for i in range(4)]
    )
    with bus.producer() as producer:
        for m in messages:
            producer.publish(TOPIC_POSTS_CLASSIFIED, m.to_json(), m.post.id.encode())
        producer.flush()
    run_until_drained(
        Runner(pg_stage, batch_size=100, threads=threads), bus, TOPIC_POSTS_CLASSIFIED
    )
    with pg_stage.ctx.sessions() as s:
        events = s.execute(
            sa.select(models.Event.topic, models.Event.post_count).order_by(models.Event.topic)
        ).all()
        raised = s.execute(
            sa.select(models.Alert.department_id, models.Alert.severity).order_by(
                models.Alert.department_id
            )
        ).all()
        logged = s.scalar(sa.select(sa.func.count()).select_from(models.AlertLogEntry))
    # 20 reposts make one event; each of the others an event of its own.
    assert sorted(Counter(topic for topic, _ in events).items()) == [
        ("交通出行", 4),
        ("住房保障", 5),
        ("环境保护", 1),
    ]
    assert sum(n for _, n in events) == len(messages)
    # The reposts' event is hot (high): its lead and a co-responsible department.
    assert [tuple(r) for r in raised] == [
        ("environment", "high"),
        *[("housing", "medium")] * 5,
        *[("transport", "medium")] * 4,
        ("urban-enforcement", "high"),
    ]
    assert logged == len(raised)
    if threads == 1:
        assert [(name.startswith("responder-part"), len(t)) for name, t in calls] == [(False, 3)]
    else:
        assert all(name.startswith("responder-part") for name, _ in calls)
        assert sorted(map(sorted, (t for _, t in calls))) == [
            ["交通出行", "住房保障"],
            ["环境保护"],
        ]


# ------------------------------------------------------------------ PostgreSQL + Kafka


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.kafka
def test_responder_process_on_postgres_and_kafka(
    isolated_env: Path, pg_schema_url: str, fresh_kafka_broker: str
) -> None:
    from pipeline.bus.kafka import KafkaBus

    env = base_env(isolated_env / "var")
    env.update(
        YUQING_BUS="kafka",
        YUQING_KAFKA_BOOTSTRAP_SERVERS=fresh_kafka_broker,
        YUQING_KAFKA_SESSION_TIMEOUT_MS="6000",
        YUQING_DATABASE_URL=pg_schema_url,
    )
    upgrade = yuqing(env, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr.decode()
    bus = KafkaBus(fresh_kafka_broker, client_id="test", session_timeout_ms=6000)
    engine = migrated_engine(pg_schema_url)
    sessions = session_factory(engine)
    batch = [classified(i, minutes=i) for i in range(30)] + [housing(i) for i in range(5)]

    def count(model: type) -> int:
        with sessions() as s:
            return s.scalar(sa.select(sa.func.count()).select_from(model))

    try:
        ensure_topics(bus, load_settings(config_dir=REPO / "config"))
        with bus.producer() as producer:
            for m in batch:
                producer.publish(TOPIC_POSTS_CLASSIFIED, m.to_json(), m.post.id.encode())
            producer.flush()
        for replay in (False, True):
            if replay:
                reset = yuqing(
                    env,
                    "bus",
                    "replay",
                    TOPIC_POSTS_CLASSIFIED,
                    "--group",
                    "yuqing-responder",
                    "--to-offset",
                    "0",
                )
                assert reset.returncode == 0, reset.stderr.decode()
            runner = start(env, "run", "responder", capture=True)
            try:
                wait_for(lambda: count(models.EventPost) == 35, 120, "35 posts in events")
                # A partition the group has not committed on yet reads None.
                wait_for(
                    lambda: (
                        sum(
                            v or 0
                            for v in bus.committed(
                                TOPIC_POSTS_CLASSIFIED, "yuqing-responder"
                            ).values()
                        )
                        >= 35
                    ),
                    120,
                    "the responder to commit",
                )
            finally:
                runner.send_signal(signal.SIGTERM)
                out, _ = runner.communicate(timeout=60)
            assert runner.returncode == 0, out.decode()[-3000:]
            # One event of 30 reposts (a spike: high, lead and co), five of one post each.
            assert count(models.Alert) == 7
            assert count(models.Event) == 6
        with sessions() as s:
            log_ids = {f"{e.alert_id}:{e.id}" for e in s.scalars(sa.select(models.AlertLogEntry))}
        messages: list[Alert] = []
        with bus.consumer([TOPIC_ALERTS], "reader") as consumer:
            for _ in range(40):
                got = consumer.poll(1000, 0.5)
                if not got and messages:
                    break
                messages.extend(Alert.from_json(r.value) for r in got)
        assert {m.change_id for m in messages} == log_ids
    finally:
        bus.close()
        engine.dispose()
