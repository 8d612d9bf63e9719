"""The web app factory: routes, security headers, metrics, error mapping.

`create_app` takes everything it uses (settings, engine, bus) so that the `web` stage,
the tests and a second replica each build their own, and nothing lives in module state.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.bus import Bus
from pipeline.settings import Settings
from pipeline.storage.db import make_engine, session_factory
from responders.deadlines import DeadlineCalculator, load_calculator
from responders.publish import Publisher
from responders.web import metrics, pages
from responders.web.accounts import AccountError

DOCS_PATHS = ("/api/docs", "/api/openapi.json")

#: Sent with every answer. The API serves JSON only, so a page may run no script and
#: may not be framed; the docs page (Swagger UI) loads its script and styles itself, and
#: the pages (`responders/web/pages`) send their own policy, which is kept.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
API_ONLY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]


@dataclass
class WebState:
    """What the routes reach through `request.app.state.web`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    publisher: Publisher
    owns_engine: bool = False
    _deadlines: DeadlineCalculator | None = None

    def deadlines(self) -> DeadlineCalculator:
        """The SLA calculator of this app's config (read once, at first use)."""
        if self._deadlines is None:
            self._deadlines = load_calculator(self.settings)
        return self._deadlines


class HeadersAndMetrics:
    """ASGI middleware: security headers on every answer, request counts and timings.

    Plain ASGI rather than `BaseHTTPMiddleware`, so that the event stream flows through
    unbuffered and a client that leaves is noticed at once."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        is_api = not scope["path"].startswith(DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                own = {name.lower() for name, _ in headers}  # pages set their own CSP
                extra = [h for h in API_ONLY_HEADERS if is_api and h[0] not in own]
                headers += SECURITY_HEADERS + extra
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.REQUESTS.labels(scope["method"], route, str(status)).inc()
            if route != "/api/stream":
                metrics.REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)


async def _error_response(_request: Request, exc: Exception) -> JSONResponse:
    """QueueError and AccountError carry their HTTP status; the message is the detail."""
    return JSONResponse({"detail": str(exc)}, status_code=getattr(exc, "status", 500))


def create_app(
    settings: Settings, *, engine: Engine | None = None, bus: Bus | None = None
) -> FastAPI:
    """The API. Without `engine`, one is opened on the settings' database (and disposed at
    shutdown); without `bus`, changes are not published to the `alerts` topic."""
    from responders.queue import QueueError
    from responders.web import alerts, departments, health, reports, session_routes, stream, users

    owns_engine = engine is None
    engine = engine or make_engine(settings.resolved_database_url)
    state = WebState(
        settings,
        engine,
        session_factory(engine),
        Publisher(bus, metrics.PUBLISH_FAILURES),
        owns_engine=owns_engine,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.publisher.close()
        if state.owns_engine:
            state.engine.dispose()

    app = FastAPI(
        title="yuqing",
        lifespan=lifespan,
        summary="Public-opinion monitoring: alerts, department queues, users.",
        version="1",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.web = state
    for module in (session_routes, alerts, stream, users, departments, health, reports):
        app.include_router(module.router)
    pages.install(app)
    app.add_exception_handler(QueueError, _error_response)
    app.add_exception_handler(AccountError, _error_response)
    app.add_middleware(HeadersAndMetrics)

    return app
