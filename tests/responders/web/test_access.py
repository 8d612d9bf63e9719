"""Who may read and act on what, through every endpoint (DESIGN: HTTP API, Security)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from responders import queue
from responders.web.alerts import ACTION_ROUTES
from tests.responders.web.conftest import Alerts, bearer

#: A body each action would accept, so that what answers is access, not validation.
BODIES: dict[str, dict[str, Any]] = {
    "respond": {"text": "已派人核查", "channel": "政府网站", "link": "https://gov.example/r/1"},
    "transfer": {"to": "housing", "reason": "属住建委职责"},
    "reject-transfer": {"reason": "属本部门职责"},
    "reassign": {"to": "housing", "reason": "职责调整"},
    "dismiss": {"reason": "误报"},
    "reopen": {"reason": "再次发酵"},
    "severity": {"severity": "critical", "reason": "升级"},
    "instruct": {"text": "请尽快核实并回应"},
}
PATHS = [route.path for route in ACTION_ROUTES]


def test_every_queue_action_has_a_route() -> None:
    assert sorted(route.action for route in ACTION_ROUTES) == sorted(queue.ACTIONS)


def act(client: TestClient, token: str, alert_id: str, path: str) -> Any:
    return client.post(
        f"/api/alerts/{alert_id}/{path}", json=BODIES.get(path), headers=bearer(token)
    )


@pytest.mark.parametrize("path", PATHS)
def test_department_gets_404_acting_on_another_departments_alert(
    client: TestClient, tokens: dict[str, str], alerts: Alerts, path: str
) -> None:
    response = act(client, tokens["env1"], alerts.edu.id, path)
    assert response.status_code == 404, response.text
    # The same answer as for an alert that does not exist: ids leak nothing.
    assert act(client, tokens["env1"], "al-nonexistent", path).status_code == 404
    detail = client.get(f"/api/alerts/{alerts.edu.id}", headers=bearer(tokens["press1"])).json()
    assert detail["state"] == "new" and [e["action"] for e in detail["log"]] == ["raise"]


def test_department_reads_only_its_own_alerts(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    env = bearer(tokens["env1"])
    assert client.get(f"/api/alerts/{alerts.edu.id}", headers=env).status_code == 404
    assert client.get(f"/api/alerts/{alerts.env.id}", headers=env).status_code == 200
    listed = client.get("/api/alerts", headers=env).json()["items"]
    assert [a["id"] for a in listed] == [alerts.env.id]
    # Searching for the other department's text or source finds nothing either.
    for query in ({"q": "招生"}, {"source": "forum"}, {"state": "new"}):
        found = client.get("/api/alerts", params=query, headers=env).json()["items"]
        assert alerts.edu.id not in [a["id"] for a in found]


@pytest.mark.parametrize("department", ["education", "environment,education"])
@pytest.mark.parametrize("endpoint", ["/api/alerts", "/api/stream"])
def test_department_filtering_to_another_department_is_403(
    client: TestClient, tokens: dict[str, str], alerts: Alerts, endpoint: str, department: str
) -> None:
    response = client.get(
        endpoint, params={"department": department}, headers=bearer(tokens["env1"])
    )
    assert response.status_code == 403


def test_press_and_leader_read_everything(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    for user in ("press1", "leader1"):
        items = client.get("/api/alerts", headers=bearer(tokens[user])).json()["items"]
        assert {a["id"] for a in items} == {alerts.env.id, alerts.edu.id}
        filtered = client.get(
            "/api/alerts", params={"department": "education"}, headers=bearer(tokens[user])
        ).json()["items"]
        assert [a["id"] for a in filtered] == [alerts.edu.id]


@pytest.mark.parametrize("path", [p for p in PATHS if p != "instruct"])
def test_leader_cannot_act(
    client: TestClient, tokens: dict[str, str], alerts: Alerts, path: str
) -> None:
    assert act(client, tokens["leader1"], alerts.env.id, path).status_code == 403


def test_leader_instructs(client: TestClient, tokens: dict[str, str], alerts: Alerts) -> None:
    response = act(client, tokens["leader1"], alerts.env.id, "instruct")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["instruction"] == BODIES["instruct"]["text"]
    assert body["log"][-1]["actor"] == "leader1" and body["log"][-1]["action"] == "instruct"
    # …and the department sees it on its alert.
    seen = client.get(f"/api/alerts/{alerts.env.id}", headers=bearer(tokens["env1"])).json()
    assert seen["instruction"] == BODIES["instruct"]["text"]


@pytest.mark.parametrize("path", ["ack", "dismiss", "respond"])
def test_admin_runs_users_not_the_queue(
    client: TestClient, tokens: dict[str, str], alerts: Alerts, path: str
) -> None:
    assert act(client, tokens["admin1"], alerts.env.id, path).status_code == 403


@pytest.mark.parametrize("user", ["press1", "leader1", "env1"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/users"),
        ("POST", "/api/users"),
        ("GET", "/api/users/env1"),
        ("PATCH", "/api/users/env1"),
        ("POST", "/api/users/env1/password"),
        ("GET", "/api/users/env1/tokens"),
        ("POST", "/api/users/env1/tokens"),
        ("DELETE", "/api/users/env1/tokens/1"),
    ],
)
def test_only_admin_manages_users(
    client: TestClient, tokens: dict[str, str], user: str, method: str, path: str
) -> None:
    body = {"username": "x1", "role": "press", "name": "t"} if method != "GET" else None
    response = client.request(
        method, path, json=body if method == "POST" else None, headers=bearer(tokens[user])
    )
    assert response.status_code == 403


def test_only_press_raises_alerts_by_hand(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    for user in ("env1", "leader1", "admin1"):
        response = client.post(
            "/api/alerts", json={"text": "网友爆料"}, headers=bearer(tokens[user])
        )
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/alerts"),
        ("GET", "/api/alerts/x"),
        ("POST", "/api/alerts"),
        ("POST", "/api/alerts/x/ack"),
        ("GET", "/api/stream"),
        ("GET", "/api/users"),
        ("GET", "/api/departments"),
        ("GET", "/api/me"),
        ("POST", "/api/logout"),
    ],
)
def test_everything_but_login_needs_credentials(
    client: TestClient, tokens: dict[str, str], method: str, path: str
) -> None:
    assert client.request(method, path).status_code == 401
    bad = client.request(method, path, headers=bearer("yq_not-a-real-token"))
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"].startswith("Bearer")


def test_revoked_token_and_disabled_user_fail(client: TestClient, tokens: dict[str, str]) -> None:
    admin = bearer(tokens["admin1"])
    assert client.get("/api/me", headers=bearer(tokens["env1"])).status_code == 200
    assert client.delete("/api/users/env1/tokens/999", headers=admin).status_code == 404
    listed = client.get("/api/users/env1/tokens", headers=admin).json()
    assert (
        client.delete(f"/api/users/env1/tokens/{listed[0]['id']}", headers=admin).status_code == 204
    )
    assert client.get("/api/me", headers=bearer(tokens["env1"])).status_code == 401

    assert client.get("/api/me", headers=bearer(tokens["edu1"])).status_code == 200
    assert (
        client.patch("/api/users/edu1", json={"disabled": True}, headers=admin).status_code == 200
    )
    assert client.get("/api/me", headers=bearer(tokens["edu1"])).status_code == 401


def test_departments_are_readable_by_everyone(client: TestClient, tokens: dict[str, str]) -> None:
    for user in USERS_ALL:
        response = client.get("/api/departments", headers=bearer(tokens[user]))
        assert response.status_code == 200
        assert {"id": "environment", "name": "区环保局"}.items() <= next(
            d for d in response.json() if d["id"] == "environment"
        ).items()
    assert client.get("/api/departments/nope", headers=bearer(tokens["env1"])).status_code == 404


USERS_ALL = ("press1", "leader1", "admin1", "env1", "edu1")
