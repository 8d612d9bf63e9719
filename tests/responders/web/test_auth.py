"""Sessions, CSRF, login rate limiting, password storage."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from pipeline.messages import now_utc
from pipeline.storage.models import LoginAttempt, User, WebSession
from responders.web.auth import CSRF_HEADER, SESSION_COOKIE
from tests.responders.web.conftest import PASSWORD, Alerts, login


def test_login_flow_through_a_real_server(
    http: httpx.Client, tokens: dict[str, str], alerts: Alerts, session: Session
) -> None:
    """Cookie login, a CSRF-protected write, logout: over real HTTP with uvicorn."""
    response = http.post("/api/login", json={"username": "env1", "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    csrf = response.json()["csrf_token"]
    assert response.json()["user"] == {
        **response.json()["user"],
        "username": "env1",
        "role": "department",
        "department": "environment",
    }
    # The database holds a digest of the session token, never the token itself.
    token = http.cookies[SESSION_COOKIE]
    assert (
        session.scalar(
            sa.select(sa.func.count()).select_from(WebSession).where(WebSession.id == token)
        )
        == 0
    )

    assert http.get("/api/alerts").json()["items"][0]["id"] == alerts.env.id
    assert http.post(f"/api/alerts/{alerts.env.id}/ack").status_code == 403  # no CSRF
    acked = http.post(f"/api/alerts/{alerts.env.id}/ack", headers={CSRF_HEADER: csrf})
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert acked.json()["log"][-1]["actor"] == "env1"

    assert http.post("/api/logout").status_code == 403  # logout is a write too
    assert http.post("/api/logout", headers={CSRF_HEADER: csrf}).status_code == 204
    http.cookies.set(SESSION_COOKIE, token)  # a copy of the old cookie is worth nothing
    assert http.get("/api/alerts").status_code == 401


def test_csrf_token_must_match_the_session(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    login(client, "press1")
    other = TestClient(client.app)
    other_csrf = login(other, "env1")
    path = f"/api/alerts/{alerts.env.id}/dismiss"
    for headers in ({}, {CSRF_HEADER: ""}, {CSRF_HEADER: other_csrf}):
        response = client.post(path, json={"reason": "误报"}, headers=headers)
        assert response.status_code == 403, headers
    assert client.get(f"/api/alerts/{alerts.env.id}").json()["state"] == "new"
    me = client.get("/api/me").json()  # a reloaded page gets its token back
    assert (
        client.post(
            path, json={"reason": "误报"}, headers={CSRF_HEADER: me["csrf_token"]}
        ).status_code
        == 200
    )


def test_bearer_tokens_need_no_csrf(
    client: TestClient, tokens: dict[str, str], alerts: Alerts
) -> None:
    response = client.post(
        f"/api/alerts/{alerts.env.id}/ack", headers={"Authorization": f"Bearer {tokens['env1']}"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "age", [{"expires_at": -1, "last_seen_at": 0}, {"expires_at": 600, "last_seen_at": -121}]
)
def test_expired_or_idle_session_fails(
    client: TestClient, tokens: dict[str, str], session: Session, age: dict[str, int]
) -> None:
    """Absolute lifetime over, or idle longer than `web_session_idle_minutes` (120)."""
    login(client, "env1")
    assert client.get("/api/me").status_code == 200
    now = now_utc()
    session.execute(
        sa.update(WebSession).values(
            expires_at=now + timedelta(minutes=age["expires_at"]),
            last_seen_at=now + timedelta(minutes=age["last_seen_at"]),
        )
    )
    session.commit()
    assert client.get("/api/me").status_code == 401
    assert session.scalar(sa.select(sa.func.count()).select_from(WebSession)) == 0


def test_wrong_password_unknown_user_and_disabled_user_look_alike(
    client: TestClient, tokens: dict[str, str], session: Session
) -> None:
    session.execute(sa.update(User).where(User.username == "edu1").values(disabled=True))
    session.commit()
    answers = [
        client.post("/api/login", json={"username": name, "password": password})
        for name, password in (("env1", "wrong password"), ("nobody", PASSWORD), ("edu1", PASSWORD))
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.json()["detail"] for a in answers}) == 1
    assert SESSION_COOKIE not in client.cookies


def test_login_rate_limited_per_username_and_address(
    client: TestClient, tokens: dict[str, str], session: Session
) -> None:
    """5 failures (`web_login_max_failures`) in the window: even the right password waits."""
    for _ in range(5):
        bad = client.post("/api/login", json={"username": "env1", "password": "guess"})
        assert bad.status_code == 401
    blocked = client.post("/api/login", json={"username": "env1", "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    # Another user from the same address is not locked out by env1's failures.
    login(client, "edu1")
    # After the window (failures aged past it), env1 logs in again; success resets.
    session.execute(sa.update(LoginAttempt).values(at=now_utc() - timedelta(minutes=16)))
    session.commit()
    login(client, "env1")


def test_login_rate_limited_per_address(client: TestClient, tokens: dict[str, str]) -> None:
    """Password spraying: many usernames from one address."""
    web = client.app.state.web
    web.settings = web.settings.model_copy(update={"web_login_max_failures_per_ip": 8})
    for i in range(8):
        client.post("/api/login", json={"username": f"user{i}", "password": "guess"})
    response = client.post("/api/login", json={"username": "press1", "password": PASSWORD})
    assert response.status_code == 429


def test_passwords_are_stored_as_argon2id(
    client: TestClient, tokens: dict[str, str], session: Session
) -> None:
    created = client.post(
        "/api/users",
        json={"username": "new1", "role": "press", "password": "a long secret 1"},
        headers={"Authorization": f"Bearer {tokens['admin1']}"},
    )
    assert created.status_code == 201 and created.json()["password"] is None
    stored = session.scalar(sa.select(User.password_hash).where(User.username == "new1"))
    assert stored.startswith("$argon2id$") and "a long secret 1" not in stored
    login(client, "new1", "a long secret 1")


def test_login_rejects_non_json_bodies(client: TestClient, tokens: dict[str, str]) -> None:
    """A cross-site form cannot post JSON, so it cannot log a victim in as someone else."""
    response = client.post(
        "/api/login",
        content=f"username=env1&password={PASSWORD}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
