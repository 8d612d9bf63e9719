"""Web fixtures: the app on the responder tests' database, users of every role with API
tokens, alerts of two departments, a TestClient and a real uvicorn server.

Users are inserted with one argon2 hash made per session (hashing is slow on purpose);
tests that log in use `PASSWORD`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from pipeline.settings import Settings
from pipeline.storage import models
from responders.web import accounts, security
from responders.web.app import create_app
from tests.conftest import free_port
from tests.responders.conftest import CONFIG, T0

PASSWORD = "correct horse battery"
#: username → (role, department)
USERS = {
    "press1": ("press", None),
    "leader1": ("leader", None),
    "admin1": ("admin", None),
    "env1": ("department", "environment"),
    "edu1": ("department", "education"),
}


@pytest.fixture(scope="session")
def password_hash() -> str:
    return security.hash_password(PASSWORD)


@pytest.fixture
def web_settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings(
        config_dir=CONFIG,
        data_dir=tmp_path / "var",
        database_url=sqlite_url,
        web_stream_poll_seconds=0.2,
    )


@pytest.fixture
def tokens(session: Session, password_hash: str) -> dict[str, str]:
    """A bearer token per user of `USERS`."""
    return add_users(session, password_hash)


def add_users(session: Session, password_hash: str) -> dict[str, str]:
    for name, (role, dept) in USERS.items():
        session.add(
            models.User(username=name, role=role, department_id=dept, password_hash=password_hash)
        )
    session.flush()
    secrets = {
        name: accounts.issue_token(session, name, "test", by="test").secret for name in USERS
    }
    session.commit()
    return secrets


def add_post(
    session: Session,
    event_id: str,
    post_id: str,
    *,
    source: str = "weibo",
    text: str = "工地扬尘严重，晚上施工噪音大",
    title: str | None = "扬尘投诉",
    url: str | None = "https://example.org/p/1",
) -> models.Post:
    """A post of the event, with a classification (as the classifier would store)."""
    post = models.Post(
        id=post_id,
        source=source,
        channel="feed",
        url=url,
        title=title,
        text=text,
        fetched_at=T0,
        published_at=T0,
        author_masked="张**",
    )
    session.add(post)
    session.flush()
    session.add(models.EventPost(event_id=event_id, post_id=post_id, at=T0))
    session.add(
        models.Classification(
            post_id=post_id,
            model_version="test-1",
            policy_relevant=True,
            relevance_score=0.9,
            departments=[{"id": "environment", "score": 0.8, "role": "lead"}],
            topic="环境保护",
            sentiment="negative",
            sentiment_score=0.9,
            sensitivity=["切身利益"],
            severity="medium",
            explanation={"departments": ["扬尘"], "sentiment": ["严重"]},
            classified_at=T0,
        )
    )
    session.commit()
    return post


@dataclass
class Alerts:
    env: models.Alert  # environment's alert (env1 sees it)
    edu: models.Alert  # education's alert (env1 must never see it)


@pytest.fixture
def alerts(session: Session, make_alert: Callable[..., models.Alert]) -> Alerts:
    env = make_alert("environment", "high")
    edu = make_alert("education", "medium")
    add_post(session, env.event_id, "p-env", source="weibo")
    add_post(
        session, edu.event_id, "p-edu", source="forum", text="学校招生不公平", title="招生问题"
    )
    return Alerts(env, edu)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(web_settings: Settings, engine: Engine) -> FastAPI:
    return create_app(web_settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def login(client: Any, username: str, password: str = PASSWORD) -> str:
    """Log in (the client keeps the cookie); returns the CSRF token."""
    response = client.post("/api/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The app served by a real uvicorn on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def http(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=10) as c:
        yield c
