"""User administration: the admin endpoints and `yuqing users`, both audited."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from pipeline.storage.models import AlertLogEntry, ApiToken, User
from responders.web.cli import users_app
from tests.responders.web.conftest import PASSWORD, bearer, login


def audit(session: Session) -> list[tuple[str, str, str]]:
    """(actor, action, username) of the admin entries in the audit log."""
    rows = session.scalars(
        sa.select(AlertLogEntry).where(AlertLogEntry.alert_id.is_(None)).order_by(AlertLogEntry.id)
    )
    return [(e.actor, e.action, (e.detail or {}).get("username")) for e in rows]


def test_admin_manages_a_user_through_the_api(
    client: TestClient, tokens: dict[str, str], session: Session
) -> None:
    admin = bearer(tokens["admin1"])
    made = client.post(
        "/api/users",
        json={"username": "water1", "role": "department", "department": "water"},
        headers=admin,
    )
    assert made.status_code == 201
    password = made.json()["password"]
    assert len(password) >= 16 and made.json()["user"]["department"] == "water"
    assert (
        client.post(
            "/api/users", json={"username": "water1", "role": "press"}, headers=admin
        ).status_code
        == 409
    )
    for bad in (
        {"username": "x2", "role": "department"},  # no department
        {"username": "x2", "role": "department", "department": "nope"},
        {"username": "x 2", "role": "press"},
        {"username": "x2", "role": "boss"},
        {"username": "x2", "role": "press", "password": "short"},
    ):
        assert client.post("/api/users", json=bad, headers=admin).status_code == 422, bad

    web = TestClient(client.app)
    csrf = login(web, "water1", password)
    changed = client.post("/api/users/water1/password", json={}, headers=admin)
    assert changed.status_code == 200 and changed.json()["password"] != password
    assert web.get("/api/me").status_code == 401  # a new password ends the sessions
    csrf = login(web, "water1", changed.json()["password"])

    issued = client.post("/api/users/water1/tokens", json={"name": "dingtalk"}, headers=admin)
    assert issued.status_code == 201
    secret = issued.json()["secret"]
    assert client.get("/api/me", headers=bearer(secret)).json()["user"]["username"] == "water1"
    stored = session.scalar(sa.select(ApiToken.token_hash).where(ApiToken.name == "dingtalk"))
    assert stored != secret and secret not in stored

    assert (
        client.patch("/api/users/water1", json={"role": "press"}, headers=admin).json()["role"]
        == "press"
    )
    assert (
        client.patch("/api/users/water1", json={"disabled": True}, headers=admin).json()["disabled"]
        is True
    )
    assert web.get("/api/me", headers={"X-CSRF-Token": csrf}).status_code == 401
    assert client.get("/api/me", headers=bearer(secret)).status_code == 401
    assert (
        client.patch("/api/users/admin1", json={"disabled": True}, headers=admin).status_code == 409
    )  # not yourself
    assert client.get("/api/users/nobody", headers=admin).status_code == 404
    listed = client.get("/api/users", headers=admin).json()
    assert "password_hash" not in listed[0] and len(listed) == 6

    assert [entry for entry in audit(session) if entry[2] == "water1"] == [
        ("admin1", "user.add", "water1"),
        ("admin1", "user.password", "water1"),
        ("admin1", "token.issue", "water1"),
        ("admin1", "user.update", "water1"),
        ("admin1", "user.disable", "water1"),
    ]


@pytest.fixture
def cli_env(isolated_env: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUQING_DATABASE_URL", sqlite_url)


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(users_app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_users_cli(cli_env: None, session: Session, password_hash: str) -> None:
    code, out, _ = run("add", "boss", "--role", "admin")
    assert code == 0
    generated = out.strip()
    assert len(generated) >= 16
    code, _, _ = run(
        "add",
        "env9",
        "--role",
        "department",
        "--department",
        "environment",
        "--password-stdin",
        stdin=f"{PASSWORD}\n",
    )
    assert code == 0
    code, _, err = run("add", "env9", "--role", "press")
    assert code == 1 and "exists" in err
    code, _, err = run("add", "x", "--role", "department")
    assert code == 1 and "department" in err

    users = [json.loads(line) for line in run("list")[1].splitlines()]
    assert [(u["username"], u["role"], u["department"]) for u in users] == [
        ("boss", "admin", None),
        ("env9", "department", "environment"),
    ]
    hashes = session.scalars(sa.select(User.password_hash)).all()
    assert all(h.startswith("$argon2id$") for h in hashes)

    code, token, _ = run("token", "env9", "--name", "ops")
    assert code == 0 and token.strip().startswith("yq_")
    code, _, err = run("token", "env9", "--revoke")
    assert code == 0 and "revoked 1" in err
    code, new_password, _ = run("password", "env9")
    assert code == 0 and new_password.strip() not in (PASSWORD, generated)
    assert run("disable", "env9")[0] == 0
    assert run("disable", "ghost")[0] == 1
    session.expire_all()
    assert session.scalar(sa.select(User.disabled).where(User.username == "env9")) is True

    actor = f"cli:{getpass.getuser()}"
    assert audit(session) == [
        (actor, "user.add", "boss"),
        (actor, "user.add", "env9"),
        (actor, "token.issue", "env9"),
        (actor, "token.revoke", "env9"),
        (actor, "user.password", "env9"),
        (actor, "user.disable", "env9"),
    ]
