"""The `responder` stage: `posts.classified` → events → rules → routing → alerts.

Per polled batch, in one transaction: the posts are filed into events
(`responders/events.py`), each event that got new posts is judged by the alert rules
(`responders/rules.py`) and routed (`responders/routing.py`), its alerts are raised or
updated (`responders/queue.py`, with their audit rows), and crawled official replies are
recorded as responses. Then every change goes to the `alerts` topic, keyed by department,
with the change id `<alert id>:<audit row id>`.

Replays change nothing: a post already in an event is not counted again, and audit rows
of stage changes carry deterministic keys. A post seen before instead re-publishes the
latest change of its event's alerts under the same change id, so a crash between the
commit and the publish loses no message, and consumers drop the duplicate by its id.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipeline import config as config_files
from pipeline.messages import TOPIC_ALERTS, TOPIC_POSTS_CLASSIFIED, ClassifiedPost, now_utc
from pipeline.runner import ConsumerStage, Item, Outgoing, StageContext
from pipeline.stages.persist import post_row
from pipeline.storage import models
from pipeline.storage.repository import one_of, stored_post_ids, upsert_posts
from responders import queue
from responders.deadlines import load_calculator
from responders.events import ClusterResult, EventStore, PostRef, Touched
from responders.metrics import register_alert_gauges
from responders.routing import RouteInput, Router, load_routing, watchlist_departments
from responders.rules import EventFacts, Rules, load_rules, rank

log = logging.getLogger(__name__)

#: The fewest posts worth a part of their own (`ResponderStage.split`). A small batch
#: comes when posts trickle in, and then its latency counts, not throughput: at 100
#: posts/s (batches of ~10) splitting them raised the median crawl-to-alert time by
#: 20-30 ms on Kafka + PostgreSQL.
MIN_PART = 50


def post_time(message: ClassifiedPost) -> datetime:
    """When the post happened: published, unless that claims to be after the fetch."""
    post = message.post
    if post.published_at is not None and post.published_at <= post.fetched_at:
        return post.published_at
    return post.fetched_at


class ResponderStage(ConsumerStage[ClassifiedPost]):
    """posts.classified → events, alerts and their audit rows → alerts."""

    name = "responder"
    topics = (TOPIC_POSTS_CLASSIFIED,)
    message_type = ClassifiedPost

    def __init__(self, ctx: StageContext):
        super().__init__(ctx)
        settings = ctx.settings
        self.rules = Rules(load_rules(settings))
        self.events = EventStore(self.rules.config)
        self.router = Router(
            load_routing(settings),
            config_files.departments(settings),
            watchlist_departments(settings),
        )
        self.deadlines = load_calculator(settings)
        register_alert_gauges(ctx.sessions)

    def handle(self, items: Sequence[Item[ClassifiedPost]]) -> list[Outgoing]:
        batch = {item.message.post.id: item.message for item in items}
        refs = [self.post_ref(m) for m in batch.values()]
        now = now_utc()
        with self.ctx.sessions.begin() as session:
            stored = stored_post_ids(session, list(batch))
            upsert_posts(
                session, [post_row(m.post) for m in batch.values() if m.post.id not in stored]
            )
            result = self.events.add(session, refs)
            existing = self._existing(session, {*result.touched, *result.replayed})
            changes = self._raise(session, result, batch, existing, now)
            changes += self._replies(session, result, batch, existing)
            replayed = result.replayed - set(result.touched)
            changes += self._republish(session, replayed, existing)
            sources = _sources(session, result, replayed)
            return [
                Outgoing(
                    TOPIC_ALERTS,
                    queue.alert_message(
                        c.alert, c.kind, c.change_id, sources.get(c.alert.event_id or "", [])
                    ),
                    key=c.alert.department_id,
                )
                for c in _latest_per_change(changes)
            ]

    def split(
        self, items: Sequence[Item[ClassifiedPost]], parts: int
    ) -> list[Sequence[Item[ClassifiedPost]]]:
        """The batch by topic, in at most `parts` parts of about equal size. An event
        holds posts of one topic (`EventStore.topic_key`), and so do its alerts, audit
        rows and spike counts: parts of different topics touch disjoint rows and the
        runner handles them at once, one waiting on PostgreSQL while another runs. Not
        on SQLite (one writer at a time), nor into parts smaller than `MIN_PART` (each
        costs a transaction's ~20 statements); when events may span topics, every post
        has the same key and the batch stays whole. Every message of a post goes with
        its last one, which `handle` keeps."""
        parts = min(parts, len(items) // MIN_PART)
        if parts < 2 or self.ctx.engine.dialect.name != "postgresql":
            return [items]
        key = self.events.topic_key
        topic_of = {i.message.post.id: key(i.message.classification.topic) for i in items}
        by_topic: dict[str, list[Item[ClassifiedPost]]] = defaultdict(list)
        for item in items:
            by_topic[topic_of[item.message.post.id]].append(item)
        groups: list[list[Item[ClassifiedPost]]] = [[] for _ in range(parts)]
        for topic in sorted(by_topic, key=lambda t: (-len(by_topic[t]), t)):
            min(groups, key=len).extend(by_topic[topic])  # largest topics first
        return [group for group in groups if group]

    def post_ref(self, message: ClassifiedPost) -> PostRef:
        post, c = message.post, message.classification
        watchlists = tuple(c.explanation.get("watchlists", ()))
        passes = self.rules.passes_gate(c.relevance_score, watchlists)
        return PostRef(
            post_id=post.id,
            source=post.source,
            text=post.text,
            at=post_time(message),
            topic=c.topic,
            title=post.title,
            severity=c.severity if passes else None,
            watchlists=watchlists,
        )

    @staticmethod
    def _existing(session: Session, event_ids: set[str]) -> dict[str, list[models.Alert]]:
        """The alerts of these events, locked against concurrent web changes."""
        by_event: dict[str, list[models.Alert]] = defaultdict(list)
        if not event_ids:
            return by_event
        alerts = session.scalars(
            sa.select(models.Alert)
            .where(one_of(session, models.Alert.event_id, event_ids))
            .order_by(models.Alert.id)
            .with_for_update()
        )
        for alert in alerts:
            by_event[alert.event_id or ""].append(alert)
        return by_event

    def _raise(
        self,
        session: Session,
        result: ClusterResult,
        batch: dict[str, ClassifiedPost],
        existing: dict[str, list[models.Alert]],
        now: datetime,
    ) -> list[queue.Change]:
        log = queue.StageLog()
        for event_id, touched in result.touched.items():
            have = existing[event_id]
            for spec in self._specs(touched, batch, have):
                alert = queue.raise_or_update(
                    session,
                    spec,
                    have,
                    now=now,
                    deadlines=self.deadlines,
                    log=log,
                    reopen_min_new_posts=self.rules.config.reopen.min_new_posts,
                )
                if alert is not None and alert not in have:
                    have.append(alert)
        return log.write(session)

    def _specs(
        self, touched: Touched, batch: dict[str, ClassifiedPost], have: list[models.Alert]
    ) -> list[queue.RaiseSpec]:
        """What to raise or update for an event that got posts: its routed departments
        (co-responsible ones from `co_departments.min_severity`; no second lead once it
        has one; none once press dismissed its lead alert), and every alert it has."""
        event = touched.event
        facts = EventFacts(event.severity, event.heat, tuple(event.watchlists or ()), touched.spike)
        verdict = self.rules.evaluate(facts)
        if verdict is None:
            for alert in have:
                alert.heat = event.heat
            return []
        # Route by the most severe new post (the first of equals).
        best = max(touched.new_posts, key=lambda p: rank(p.severity))
        message = batch[best.post_id]
        route = self.router.route(
            RouteInput(
                source=best.source,
                text=f"{message.post.title or ''}\n{message.post.text}",
                topic=best.topic,
                departments=message.classification.departments,
                watchlists=best.watchlists,
            )
        )
        has_lead = any(a.role == "lead" for a in have)
        # Press dismissed the lead alert as a false alarm: the event raises nothing new.
        false_alarm = any(a.role == "lead" and a.state == "dismissed" for a in have)
        targets: dict[str, str] = {}
        for department, role in [] if false_alarm else route.departments:
            known = queue.find_alert(have, event.id, department) is not None
            if role == "co" and not (known or self.rules.co_alerts(verdict.severity)):
                continue
            if role == "lead" and has_lead and not known:
                continue
            targets.setdefault(department, role)
        matched = {id(queue.find_alert(have, event.id, d)) for d in targets}
        for alert in have:
            if id(alert) not in matched:
                targets.setdefault(alert.department_id, alert.role)

        def spec(department: str, role: str) -> queue.RaiseSpec:
            return queue.RaiseSpec(
                event=event,
                department_id=department,
                role=role,
                severity=verdict.severity,
                title=event.title,
                topic=event.topic,
                sentiment=message.classification.sentiment,
                spike=touched.spike,
                reasons=[*verdict.reasons, *route.reasons],
            )

        return [spec(d, r) for d, r in targets.items()]

    @staticmethod
    def _replies(
        session: Session,
        result: ClusterResult,
        batch: dict[str, ClassifiedPost],
        existing: dict[str, list[models.Alert]],
    ) -> list[queue.Change]:
        """A message-board post with the official reply: a 回复网民 response on its
        event's lead alert (idempotent per reply)."""
        changes = []
        for post_id, message in batch.items():
            reply = message.post.reply
            event_id = result.event_of.get(post_id)
            if reply is None or event_id is None:
                continue
            lead = next((a for a in existing.get(event_id, []) if a.role == "lead"), None)
            if lead is None:
                continue
            _, change = queue.record_crawled_reply_change(
                session, lead.id, reply.text, reply.time or message.post.fetched_at,
                message.post.url,
            )  # fmt: skip
            if change is not None:
                changes.append(change)
        return changes

    @staticmethod
    def _republish(
        session: Session, event_ids: set[str], existing: dict[str, list[models.Alert]]
    ) -> list[queue.Change]:
        """The latest change of each alert of replayed events, under its own id."""
        alerts = {a.id: a for e in event_ids for a in existing.get(e, [])}
        if not alerts:
            return []
        entry = models.AlertLogEntry
        latest = (
            sa.select(sa.func.max(entry.id))
            .where(one_of(session, entry.alert_id, list(alerts)))
            .group_by(entry.alert_id)
        )
        rows = session.execute(
            sa.select(entry.alert_id, entry.id, entry.action).where(entry.id.in_(latest))
        )
        return [
            queue.Change(
                alerts[alert_id],
                "created" if action == "raise" else "changed",
                queue.change_id(alert_id, log_id),
            )
            for alert_id, log_id, action in rows
        ]


def _sources(session: Session, result: ClusterResult, replayed: set[str]) -> dict[str, list[str]]:
    """Each event's sources for the alert messages: in memory for the events this batch
    touched, one query for replayed ones (not a lazy load per alert)."""
    sources = {event_id: list(t.event.sources or []) for event_id, t in result.touched.items()}
    if replayed:
        rows = session.execute(
            sa.select(models.Event.id, models.Event.sources).where(
                one_of(session, models.Event.id, list(replayed))
            )
        )
        sources.update((event_id, list(value or [])) for event_id, value in rows)
    return sources


def _latest_per_change(changes: list[queue.Change]) -> list[queue.Change]:
    """Changes in order, each change id once."""
    return list({c.change_id: c for c in changes}.values())
