"""`yuqing reclassify`: stored posts back onto `posts.raw` for a new model.

Every consumer of `posts.raw` is idempotent: `persist` ignores posts it has, the
classifier stores one classification per (post, model version), and the responder
dedups alerts; so re-publishing is safe and only the new model's classifications are new.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import undefer

from pipeline.bus import open_bus
from pipeline.messages import TOPIC_POSTS_RAW, aware
from pipeline.runner import ensure_topics
from pipeline.settings import Settings
from pipeline.stages.persist import post_from_row
from pipeline.storage.db import make_engine, session_factory
from pipeline.storage.models import Post as PostRow

PAGE = 1000


def republish(settings: Settings, since: datetime | None = None) -> int:
    """Publish every stored post fetched at or after `since` (all when None)."""
    engine = make_engine(settings.resolved_database_url)
    count = 0
    try:
        query = (
            sa.select(PostRow)
            .options(undefer(PostRow.snapshot))
            .order_by(PostRow.fetched_at, PostRow.id)
        )
        if since is not None:
            query = query.where(PostRow.fetched_at >= aware(since))
        with session_factory(engine)() as session, open_bus(settings) as bus:
            ensure_topics(bus, settings)
            with bus.producer() as producer:
                for row in session.scalars(query.execution_options(yield_per=PAGE)):
                    post = post_from_row(row)
                    producer.publish(TOPIC_POSTS_RAW, post.to_json(), post.id.encode())
                    count += 1
                producer.flush()
    finally:
        engine.dispose()
    return count
