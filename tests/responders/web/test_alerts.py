"""The alert list (filters, sorting, pagination), the detail, hand-raised alerts, actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from pipeline.bus.local import LocalBus
from pipeline.messages import TOPIC_ALERTS
from pipeline.messages import Alert as AlertMessage
from pipeline.settings import Settings
from pipeline.storage import models
from responders.web.app import create_app
from tests.responders.conftest import T0
from tests.responders.web.conftest import Alerts, add_post, bearer

SCRIPT = "<script>alert(1)</script>"
JS_URL = "javascript:alert(document.cookie)"


@pytest.fixture
def many(
    session: Session, make_alert: Callable[..., models.Alert], tokens: dict[str, str]
) -> list[models.Alert]:
    """Seven alerts an hour apart, severities and departments mixed."""
    plan = [
        ("environment", "low"),
        ("environment", "critical"),
        ("education", "high"),
        ("environment", "medium"),
        ("housing", "critical"),
        ("environment", "high"),
        ("education", "low"),
    ]
    made = [make_alert(dept, sev, at=T0 + timedelta(hours=i)) for i, (dept, sev) in enumerate(plan)]
    add_post(session, made[3].event_id, "p-forum", source="forum", text="河道黑臭 无人治理")
    return made


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["items"]]


def test_pages_follow_the_cursor_without_gaps_or_repeats(
    client: TestClient, tokens: dict[str, str], many: list[models.Alert]
) -> None:
    press = bearer(tokens["press1"])
    for sort, expected in [
        ("-created_at", [a.id for a in reversed(many)]),
        ("created_at", [a.id for a in many]),
        (
            "severity",
            [
                a.id
                for a in sorted(
                    many,
                    key=lambda a: (["critical", "high", "medium", "low"].index(a.severity), a.id),
                )
            ],
        ),
    ]:
        seen, cursor = [], None
        while True:
            page = client.get(
                "/api/alerts", params={"sort": sort, "limit": 3, "cursor": cursor}, headers=press
            ).json()
            assert "items" in page, page
            seen += [a["id"] for a in page["items"]]
            cursor = page["next"]
            if cursor is None:
                break
        assert seen == expected, sort


def test_filters(client: TestClient, tokens: dict[str, str], many: list[models.Alert]) -> None:
    press = bearer(tokens["press1"])

    def query(**params: str) -> set[str]:
        return set(ids(client.get("/api/alerts", params=params, headers=press)))

    assert query(severity="critical") == {many[1].id, many[4].id}
    assert query(severity="critical,low", department="environment") == {many[0].id, many[1].id}
    assert query(department="education") == {many[2].id, many[6].id}
    assert query(since=(T0 + timedelta(hours=5)).isoformat()) == {many[5].id, many[6].id}
    # A time without offset is Shanghai time: T0 is 10:00 there.
    assert query(until="2026-11-17T11:00:00") == {many[0].id}
    assert query(source="forum") == {many[3].id} == query(q="黑臭")
    assert query(q="事件 ev-2") == {many[1].id}  # in the title
    assert query(q="100%_") == set()  # LIKE wildcards are text
    assert query(topic="环境保护", sentiment="negative") == set()
    assert query(state="new") == {a.id for a in many}
    for bad in (
        {"state": "open"},
        {"severity": "urgent"},
        {"sort": "title"},
        {"cursor": "bm90IGEgY3Vyc29y"},
        {"limit": "0"},
    ):
        assert client.get("/api/alerts", params=bad, headers=press).status_code == 422, bad


def test_cursor_of_another_sort_is_refused(
    client: TestClient, tokens: dict[str, str], many: list[models.Alert]
) -> None:
    press = bearer(tokens["press1"])
    cursor = client.get("/api/alerts", params={"limit": 2}, headers=press).json()["next"]
    response = client.get("/api/alerts", params={"cursor": cursor, "sort": "heat"}, headers=press)
    assert response.status_code == 422


def test_detail_has_posts_timeline_explanation_and_log(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    detail = client.get(f"/api/alerts/{alerts.env.id}", headers=bearer(tokens["env1"])).json()
    assert detail["department"] == "environment" and detail["severity"] == "high"
    assert detail["sources"] == ["weibo"]
    assert detail["event"]["timeline"] == [
        {"hour": "2026-11-17T02:00:00Z", "posts": 1, "sources": 1}
    ]
    (post,) = detail["posts"]
    assert post["author"] == "张**" and "author_hash" not in post
    assert post["classification"]["explanation"] == {"departments": ["扬尘"], "sentiment": ["严重"]}
    assert detail["classification"]["model_version"] == "test-1"
    assert [(e["actor"], e["action"], e["to_state"]) for e in detail["log"]] == [
        ("system", "raise", "new")
    ]


def test_crawled_markup_comes_back_as_data_in_json(
    client: TestClient, tokens: dict[str, str], alerts: Alerts, session: Session
) -> None:
    """Escaping belongs to whatever renders HTML; the API returns the text unchanged, as
    JSON that no browser will sniff into a page."""
    add_post(session, alerts.env.event_id, "p-xss", text=SCRIPT, title=SCRIPT, url=JS_URL)
    response = client.get(f"/api/alerts/{alerts.env.id}", headers=bearer(tokens["env1"]))
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    post = next(p for p in response.json()["posts"] if p["id"] == "p-xss")
    assert (post["text"], post["title"], post["url"]) == (SCRIPT, SCRIPT, JS_URL)
    found = client.get("/api/alerts", params={"q": "<script>"}, headers=bearer(tokens["env1"]))
    assert found.headers["content-type"] == "application/json"
    assert ids(found) == [alerts.env.id]


def test_press_raises_an_alert_from_a_tip(
    client: TestClient, tokens: dict[str, str], session: Session
) -> None:
    press = bearer(tokens["press1"])
    made = client.post(
        "/api/alerts",
        json={
            "text": f"网友爆料：{SCRIPT} 电话13812345678",
            "url": "https://bbs.example/t/9",
            "severity": "high",
        },
        headers=press,
    )
    assert made.status_code == 201, made.text
    alert = made.json()
    assert (alert["department"], alert["severity"], alert["state"]) == ("gov-office", "high", "new")
    assert alert["log"][0]["actor"] == "press1" and alert["log"][0]["action"] == "raise"
    assert alert["ack_due"] and alert["response_due"]
    assert "13812345678" not in alert["posts"][0]["text"]  # masked like every stored post
    to_env = client.post(
        "/api/alerts",
        json={"url": "https://news.example/a", "department": "environment"},
        headers=press,
    )
    assert to_env.status_code == 201 and to_env.json()["department"] == "environment"
    for bad in (
        {"text": " "},
        {"url": JS_URL},
        {"text": "x", "department": "nope"},
        {"text": "x", "severity": "urgent"},
    ):
        assert client.post("/api/alerts", json=bad, headers=press).status_code == 422, bad


def test_a_transfer_round_trip_and_state_conflicts(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    env, press, housing_path = bearer(tokens["env1"]), bearer(tokens["press1"]), alerts.env.id

    def post(path: str, headers: dict[str, str], **body: str) -> int:
        return client.post(
            f"/api/alerts/{housing_path}/{path}", json=body or None, headers=headers
        ).status_code

    assert post("close", env) == 409  # not responded yet
    assert post("transfer", env, to="housing") == 422  # the reason is required
    assert post("transfer", env, to="housing", reason="属住建委职责") == 200
    assert post("approve-transfer", env) == 403
    assert post("approve-transfer", press) == 200
    assert client.get(f"/api/alerts/{alerts.env.id}", headers=env).status_code == 404
    assert post("respond", env, text="已处理", channel="政府网站") == 404  # not theirs now
    detail = client.get(f"/api/alerts/{alerts.env.id}", headers=press).json()
    assert (detail["department"], detail["state"]) == ("housing", "new")
    assert [e["action"] for e in detail["log"]] == ["raise", "request_transfer", "approve_transfer"]
    assert post("respond", press, text="x", channel="新闻发布会") == 403


def test_respond_and_close(client: TestClient, tokens: dict[str, str], alerts: Alerts) -> None:
    env = bearer(tokens["env1"])
    path = f"/api/alerts/{alerts.env.id}"
    bad = client.post(f"{path}/respond", json={"text": "已处理", "channel": "短信"}, headers=env)
    assert bad.status_code == 422
    done = client.post(
        f"{path}/respond",
        json={"text": SCRIPT, "channel": "政府网站", "link": "https://gov.example/r/1"},
        headers=env,
    )
    assert done.status_code == 200
    assert done.json()["responses"][0]["text"] == SCRIPT
    assert client.post(f"{path}/close", headers=env).json()["state"] == "closed"


def test_changes_are_published_to_the_alerts_topic(
    web_settings: Settings,
    engine: sa.Engine,
    tokens: dict[str, str],
    alerts: Alerts,
    tmp_path: Path,
) -> None:
    bus = LocalBus(tmp_path / "bus.sqlite3")
    bus.create_topics({TOPIC_ALERTS: 1})
    try:
        with TestClient(create_app(web_settings, engine=engine, bus=bus)) as client:
            client.post(f"/api/alerts/{alerts.env.id}/ack", headers=bearer(tokens["env1"]))
            client.post("/api/alerts", json={"text": "爆料"}, headers=bearer(tokens["press1"]))
        with bus.consumer([TOPIC_ALERTS], "test") as consumer:
            records = consumer.poll(10, 5.0)
    finally:
        bus.close()
    messages = [AlertMessage.from_json(r.value) for r in records]
    assert [(m.change, m.state) for m in messages] == [
        ("changed", "acknowledged"),
        ("created", "new"),
    ]
    assert records[0].key == b"environment" and messages[0].change_id.startswith(alerts.env.id)
