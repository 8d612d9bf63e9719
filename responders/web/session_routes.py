"""`POST /api/login`, `POST /api/logout`, `GET /api/me`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from pipeline.storage.models import User
from responders.web import auth
from responders.web.auth import DB, Caller, Principal
from responders.web.schemas import LoginRequest, Me, UserOut

router = APIRouter(tags=["session"])


def _me(session: DB, principal: Principal) -> Me:
    user = session.get(User, principal.user_id)
    return Me(
        user=UserOut.model_validate(user),
        csrf_token=principal.csrf_token,
        expires_at=principal.expires_at,
    )


@router.post("/api/login", response_model=Me)
def login(body: LoginRequest, request: Request, response: Response, session: DB) -> Me:
    """Open a session: sets the HttpOnly session cookie and returns the CSRF token that
    every later POST, PATCH and DELETE of this session sends as `X-CSRF-Token`.
    Repeated failures for a username from one address answer 429 for a while."""
    principal = auth.login(request, response, session, body.username, body.password)
    return _me(session, principal)


@router.post("/api/logout", status_code=204)
def logout(response: Response, session: DB, principal: Caller) -> Response:
    """End the session (needs the CSRF token like any write)."""
    response.status_code = 204
    auth.logout(response, session, principal)
    return response


@router.get("/api/me", response_model=Me)
def me(session: DB, principal: Caller) -> Me:
    """The caller, and for a cookie session its CSRF token (after a page reload)."""
    return _me(session, principal)
