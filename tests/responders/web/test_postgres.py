"""The same API tests on PostgreSQL: the list's keyset pagination and filters, access
rules, actions, login and the event stream, re-collected here with the database swapped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from pipeline.settings import Settings
from tests.responders.conftest import CONFIG, migrated_engine
from tests.responders.web.test_access import (  # noqa: F401 - collected again on PostgreSQL
    test_department_filtering_to_another_department_is_403,
    test_department_gets_404_acting_on_another_departments_alert,
    test_department_reads_only_its_own_alerts,
)
from tests.responders.web.test_alerts import (  # noqa: F401
    many,
    test_a_transfer_round_trip_and_state_conflicts,
    test_crawled_markup_comes_back_as_data_in_json,
    test_detail_has_posts_timeline_explanation_and_log,
    test_filters,
    test_pages_follow_the_cursor_without_gaps_or_repeats,
    test_press_raises_an_alert_from_a_tip,
)
from tests.responders.web.test_auth import (  # noqa: F401
    test_expired_or_idle_session_fails,
    test_login_flow_through_a_real_server,
    test_login_rate_limited_per_username_and_address,
)
from tests.responders.web.test_stream import test_changes_reach_only_who_may_see_them  # noqa: F401
from tests.responders.web.test_users import test_admin_manages_a_user_through_the_api  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(pg_schema_url: str) -> Iterator[Engine]:
    engine = migrated_engine(pg_schema_url)
    yield engine
    engine.dispose()


@pytest.fixture
def web_settings(tmp_path: Path, pg_schema_url: str) -> Settings:
    return Settings(
        config_dir=CONFIG,
        data_dir=tmp_path / "var",
        database_url=pg_schema_url,
        web_stream_poll_seconds=0.2,
    )
