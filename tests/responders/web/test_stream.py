"""`GET /api/stream` over a real server: changes arrive within seconds, only to who may
see them, resumable with Last-Event-ID, and the stream ends when the session does."""

from __future__ import annotations

import json
import queue as queues
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipeline.storage.models import ApiToken
from responders.web.stream import GAP_SECONDS, Cursor
from tests.responders.web.conftest import Alerts, bearer


@contextmanager
def listen(base: str, token: str, **headers: str) -> Iterator[queues.Queue[dict[str, Any]]]:
    """Events of one stream, parsed, in a queue filled by a reader thread."""
    events: queues.Queue[dict[str, Any]] = queues.Queue()
    ready = threading.Event()
    stop = threading.Event()

    def read() -> None:
        with (
            httpx.Client(base_url=base, timeout=30) as client,
            client.stream("GET", "/api/stream", headers={**bearer(token), **headers}) as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            event: dict[str, Any] = {}
            for line in response.iter_lines():
                ready.set()
                if stop.is_set():
                    return
                if line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("event: "):
                    event["event"] = line[7:]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif not line and event:
                    events.put(event)
                    if event.get("event") == "end":
                        return
                    event = {}

    def run() -> None:
        with suppress(httpx.TransportError):  # the server shuts down under the reader
            read()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "stream did not open"
    time.sleep(0.5)  # the first poll fixes the starting point
    try:
        yield events
    finally:
        stop.set()


def drain(events: queues.Queue[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    found, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found.append(events.get(timeout=0.1))
        except queues.Empty:
            continue
    return found


def test_changes_reach_only_who_may_see_them(
    live_server: str, http: httpx.Client, tokens: dict[str, str], alerts: Alerts
) -> None:
    with (
        listen(live_server, tokens["env1"]) as env_events,
        listen(live_server, tokens["edu1"]) as edu_events,
        listen(live_server, tokens["leader1"]) as leader_events,
    ):
        started = time.monotonic()
        assert (
            http.post(
                f"/api/alerts/{alerts.env.id}/ack", headers=bearer(tokens["env1"])
            ).status_code
            == 200
        )
        first = env_events.get(timeout=5)
        assert time.monotonic() - started < 3
        assert first["event"] == "alert" and first["data"]["alert"]["id"] == alerts.env.id
        assert (first["data"]["change"], first["data"]["action"]) == ("changed", "acknowledge")
        assert first["data"]["alert"]["state"] == "acknowledged"

        assert (
            http.post(
                f"/api/alerts/{alerts.edu.id}/ack", headers=bearer(tokens["edu1"])
            ).status_code
            == 200
        )
        assert [e["data"]["alert"]["id"] for e in drain(edu_events, 2)] == [alerts.edu.id]
        assert drain(env_events, 1) == []  # education's change never reaches environment
        assert {e["data"]["alert"]["id"] for e in drain(leader_events, 1)} == {
            alerts.env.id,
            alerts.edu.id,
        }


def test_resume_after_last_event_id(
    live_server: str, http: httpx.Client, tokens: dict[str, str], alerts: Alerts
) -> None:
    with listen(live_server, tokens["press1"]) as events:
        http.post(f"/api/alerts/{alerts.env.id}/ack", headers=bearer(tokens["env1"]))
        first = events.get(timeout=5)
    http.post(f"/api/alerts/{alerts.edu.id}/ack", headers=bearer(tokens["edu1"]))
    with listen(live_server, tokens["press1"], **{"Last-Event-ID": str(first["id"])}) as again:
        missed = again.get(timeout=5)
    assert missed["data"]["alert"]["id"] == alerts.edu.id and missed["id"] > first["id"]


def test_stream_ends_when_the_token_is_revoked(
    live_server: str, tokens: dict[str, str], alerts: Alerts, session: Session
) -> None:
    with listen(live_server, tokens["env1"]) as events:
        session.execute(sa.update(ApiToken).values(revoked_at=sa.func.current_timestamp()))
        session.commit()
        end = events.get(timeout=5)
    assert end["event"] == "end"


def test_cursor_waits_for_ids_committed_out_of_order() -> None:
    cursor = Cursor(10)
    cursor.advance([11, 13], now=0.0)
    assert (cursor.last_id, set(cursor.gaps)) == (13, {12})
    cursor.advance([12], now=1.0)
    assert cursor.gaps == {}
    cursor.advance([16], now=2.0)
    cursor.advance([], now=2.0 + GAP_SECONDS + 1)  # rolled back: given up after a while
    assert (cursor.last_id, cursor.gaps) == (16, {})
