"""Real receivers on loopback for the notification tests: an HTTP server taking webhooks
(and robot calls) and an SMTP server (aiosmtpd), each recording what arrived and
answering what the test scripted; plus a notify config pointing at them and a clock."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from pipeline.storage import models
from pipeline.storage.db import session_factory
from responders.notify import log
from responders.notify.config import NotifyFile
from responders.notify.deliver import Deliverer
from responders.notify.dispatch import Dispatcher
from responders.notify.message import AlertFacts, Labels
from tests.conftest import free_port
from tests.responders.conftest import Clock

ROBOT_OK = b'{"errcode":0,"errmsg":"ok"}'
SECRET_ENV = "YUQING_TEST_WEBHOOK_SECRET"
SECRET = "s3cret-for-tests"


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A threaded HTTP server; answers come from `answers` (status, body), then 200."""

    port: int
    received: list[Received] = field(default_factory=list)
    answers: deque[tuple[int, bytes]] = field(default_factory=deque)
    default: tuple[int, bytes] = (200, ROBOT_OK)
    #: Hold the answer to request number `hold_at` (1-based) until `release` is set.
    hold_at: int | None = None
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, *answers: int | tuple[int, bytes]) -> None:
        for a in answers:
            self.answers.append(a if isinstance(a, tuple) else (a, b"{}"))

    def keys(self) -> list[str]:
        return [r.headers.get("idempotency-key", "") for r in self.received]

    def _take(self, request: Received) -> tuple[int, bytes, bool]:
        with self.lock:
            self.received.append(request)
            answer = self.answers.popleft() if self.answers else self.default
            return (*answer, len(self.received) == self.hold_at)


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            parts = urlsplit(self.path)
            request = Received(
                parts.path,
                {k: v[0] for k, v in parse_qs(parts.query).items()},
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            status, reply, hold = receiver._take(request)
            if hold:
                receiver.held.set()
                receiver.release.wait(60)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield receiver
    receiver.release.set()
    server.shutdown()
    server.server_close()


@dataclass
class SmtpReceiver:
    """aiosmtpd on loopback; `answers` are SMTP replies to DATA (else 250)."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    answers: deque[str] = field(default_factory=deque)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.answers:
            return self.answers.popleft()
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    from aiosmtpd.controller import Controller

    receiver = SmtpReceiver(port=free_port())
    controller = Controller(receiver, hostname="127.0.0.1", port=receiver.port)
    controller.start()
    yield receiver
    controller.stop()


def notify_config(targets: dict[str, dict[str, Any]], **overrides: Any) -> NotifyFile:
    """Every target gets every `created` event; fast retries unless overridden."""
    delivery = {"backoff_initial": "1s", "backoff_max": "8s", "timeout": "5s", "lease": "30s"}
    data: dict[str, Any] = {
        "base_url": "https://yuqing.example.gov.cn",
        "delivery": {**delivery, **overrides.pop("delivery", {})},
        "targets": targets,
        "routes": [{"events": ["created"], "notify": list(targets)}],
        **overrides,
    }
    return NotifyFile.model_validate(data)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return SECRET


@dataclass
class Outbox:
    """Notifications written for alerts and delivered by a Deliverer on `clock`."""

    sessions: sessionmaker[Session]
    config: NotifyFile
    labels: Labels
    clock: Clock

    def add(self, alert: models.Alert, event: str = "change-1") -> list[str]:
        rows = Dispatcher(self.config, self.labels).rows(
            "created", AlertFacts.of_row(alert), f"alert:{event}"
        )
        with self.sessions.begin() as session:
            log.enqueue(session, rows, self.clock.now)
        return [row["idempotency_key"] for row in rows]

    def deliverer(self) -> Deliverer:
        return Deliverer(self.sessions, self.config, clock=self.clock)

    def rows(self) -> list[models.Notification]:
        with self.sessions() as session:
            return list(session.query(models.Notification).order_by(models.Notification.id))

    def attempts(self) -> list[models.NotificationAttempt]:
        with self.sessions() as session:
            query = session.query(models.NotificationAttempt)
            return list(query.order_by(models.NotificationAttempt.id))


@pytest.fixture
def outbox(engine: Engine, labels: Labels, clock: Clock) -> Callable[[NotifyFile], Outbox]:
    def make(config: NotifyFile) -> Outbox:
        return Outbox(session_factory(engine), config, labels, clock)

    return make
