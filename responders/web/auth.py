"""Who is calling: session cookies (with CSRF tokens), bearer tokens, login rate limiting.

Everything lives in the database (DESIGN: web replicas keep no state that matters), so a
logout, a disabled user or a revoked token takes effect on every replica at the next
request. Browsers authenticate with the session cookie, which they send by themselves, so
every unsafe request on a cookie session must also carry the session's CSRF token in
`X-CSRF-Token` (a synchroniser token the login response hands out); bearer tokens are
never sent by a browser on its own and need none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request, Response
from sqlalchemy.orm import Session

from pipeline.messages import now_utc
from pipeline.settings import Settings
from pipeline.storage.models import ApiToken, LoginAttempt, User, WebSession
from responders.queue import Actor
from responders.web import metrics, security

log = logging.getLogger(__name__)

SESSION_COOKIE = "yuqing_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: `last_seen_at` / `last_used_at` are written at most this often, not on every request.
TOUCH_INTERVAL = timedelta(seconds=60)
#: Login attempts older than this are deleted (rate limiting looks back far less).
ATTEMPTS_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int
    username: str
    role: str
    department_id: str | None
    session_id: str | None = None
    csrf_token: str | None = None
    expires_at: datetime | None = None

    def actor(self) -> Actor:
        """The queue's view of the caller."""
        return Actor(self.username, self.role, self.department_id)

    def may_see_department(self, department_id: str) -> bool:
        return self.role != "department" or department_id == self.department_id


def settings_of(request: Request) -> Settings:
    return request.app.state.web.settings


def db(request: Request) -> Iterator[Session]:
    """A database session for one request (closed, and rolled back if uncommitted, after)."""
    with request.app.state.web.sessions() as session:
        yield session


DB = Annotated[Session, Depends(db)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Bearer realm="yuqing"'})


def session_alive(row: WebSession, settings: Settings, now: datetime) -> bool:
    """Within its absolute lifetime and not idle for too long."""
    idle = timedelta(minutes=settings.web_session_idle_minutes)
    return now < row.expires_at and now - row.last_seen_at < idle


def _from_bearer(session: Session, token: str, now: datetime) -> Principal:
    row = session.execute(
        sa.select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == security.token_digest(token))
    ).first()
    if row is None or row.ApiToken.revoked_at is not None or row.User.disabled:
        raise _unauthorized("invalid or revoked token")
    api_token, user = row
    if api_token.last_used_at is None or now - api_token.last_used_at > TOUCH_INTERVAL:
        api_token.last_used_at = now
        session.commit()
    return Principal(user.id, user.username, user.role, user.department_id)


def _session_principal(user: User, row: WebSession) -> Principal:
    return Principal(
        user.id,
        user.username,
        user.role,
        user.department_id,
        session_id=row.id,
        csrf_token=row.csrf_token,
        expires_at=row.expires_at,
    )


def _from_cookie(session: Session, token: str, settings: Settings, now: datetime) -> Principal:
    row = session.execute(
        sa.select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.id == security.token_digest(token))
    ).first()
    if row is None:
        raise _unauthorized("not logged in")
    web_session, user = row
    if not session_alive(web_session, settings, now) or user.disabled:
        session.delete(web_session)
        session.commit()
        raise _unauthorized("session expired")
    if now - web_session.last_seen_at > TOUCH_INTERVAL:
        web_session.last_seen_at = now
        session.commit()
    return _session_principal(user, web_session)


def authenticate(request: Request, session: Session) -> Principal:
    """The caller of `request`, or 401; 403 for a cookie session's unsafe request without
    its CSRF token."""
    settings = settings_of(request)
    now = now_utc()
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("expected `Authorization: Bearer TOKEN`")
        return _from_bearer(session, token.strip(), now)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise _unauthorized("not logged in")
    principal = _from_cookie(session, cookie, settings, now)
    if request.method not in SAFE_METHODS and not security.same_secret(
        request.headers.get(CSRF_HEADER), principal.csrf_token or ""
    ):
        metrics.CSRF_REJECTED.inc()
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header")
    return principal


def current(request: Request, session: DB) -> Principal:
    """Dependency: the authenticated caller."""
    return authenticate(request, session)


Caller = Annotated[Principal, Depends(current)]


def require(*roles: str) -> Any:
    """Dependency: the caller, who must have one of `roles` (403 otherwise)."""

    def check(principal: Caller) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"only {' or '.join(roles)} may do this")
        return principal

    return Depends(check)


# --- login ------------------------------------------------------------------------------


def client_ip(request: Request) -> str:
    """The caller's address (uvicorn has already applied trusted proxy headers)."""
    return (request.client.host if request.client else "unknown")[:64]


def login_blocked(session: Session, settings: Settings, username: str, ip: str) -> bool:
    """Too many recent failures for this username from this address, or from this address
    at all (password spraying). Failures before a successful login do not count."""
    since = now_utc() - timedelta(minutes=settings.web_login_window_minutes)
    last_ok = session.scalar(
        sa.select(sa.func.max(LoginAttempt.at)).where(
            LoginAttempt.username == username, LoginAttempt.ip == ip, LoginAttempt.succeeded
        )
    )
    failed = sa.select(sa.func.count()).where(~LoginAttempt.succeeded, LoginAttempt.ip == ip)
    for_user = failed.where(
        LoginAttempt.username == username, LoginAttempt.at > max(since, last_ok or since)
    )
    for_ip = failed.where(LoginAttempt.at > since)
    return (
        session.scalar(for_user) >= settings.web_login_max_failures
        or session.scalar(for_ip) >= settings.web_login_max_failures_per_ip
    )


def record_attempt(session: Session, username: str, ip: str, succeeded: bool) -> None:
    session.add(LoginAttempt(username=username[:64], ip=ip, succeeded=succeeded))
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.at < now_utc() - ATTEMPTS_KEPT))


def login(
    request: Request, response: Response, session: Session, username: str, password: str
) -> Principal:
    """Check the password (rate limited), open a session and set its cookie."""
    settings = settings_of(request)
    ip = client_ip(request)
    if login_blocked(session, settings, username[:64], ip):
        metrics.LOGINS.labels("limited").inc()
        retry = int(settings.web_login_window_minutes * 60)
        raise HTTPException(
            429, "too many failed logins; try later", headers={"Retry-After": str(retry)}
        )
    user = session.scalar(sa.select(User).where(User.username == username))
    ok = security.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled:
        record_attempt(session, username, ip, succeeded=False)
        session.commit()
        metrics.LOGINS.labels("failed").inc()
        log.warning("failed login for %r from %s", username[:64], ip)
        raise _unauthorized("wrong username or password")
    record_attempt(session, username, ip, succeeded=True)
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    now = now_utc()
    user.last_login_at = now
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a fresh token on every login: a planted cookie is never promoted
        session.execute(sa.delete(WebSession).where(WebSession.id == security.token_digest(old)))
    token = security.new_token()
    row = WebSession(
        id=security.token_digest(token),
        user_id=user.id,
        csrf_token=security.new_token(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.web_session_hours),
    )
    session.add(row)
    session.commit()
    metrics.LOGINS.labels("ok").inc()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.web_session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return _session_principal(user, row)


def logout(response: Response, session: Session, principal: Principal) -> None:
    """End the caller's session (a bearer token stays valid until revoked)."""
    if principal.session_id is not None:
        session.execute(sa.delete(WebSession).where(WebSession.id == principal.session_id))
        session.commit()
    response.delete_cookie(SESSION_COOKIE, path="/")
