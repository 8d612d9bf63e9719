"""User lifecycle, shared by `yuqing users` and the admin endpoints of the API.

Every change is written to the audit log (`alert_log` with no alert), with who did it,
so that user administration is as traceable as the alerts. Passwords and tokens never
reach the log. Nothing here commits: the caller commits the change with its log entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipeline.messages import now_utc
from pipeline.storage.models import (
    USER_ROLES,
    AlertLogEntry,
    ApiToken,
    Department,
    User,
    WebSession,
)
from responders.web import security

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
TOKEN_NAME_MAX = 64


class AccountError(Exception):
    """A user change that cannot be made; `status` is the HTTP status the API answers."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class IssuedToken:
    """A new API token: `secret` is shown once and then only its digest exists."""

    token: ApiToken
    secret: str


def audit(session: Session, by: str, action: str, detail: dict[str, Any]) -> None:
    """An admin action in the audit log (no alert)."""
    session.add(AlertLogEntry(alert_id=None, actor=by[:64], action=action, detail=detail))


def get_user(session: Session, username: str) -> User:
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise AccountError(404, f"no user {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(sa.select(User).order_by(User.username)))


def check_password(password: str, min_length: int) -> None:
    if len(password) < min_length:
        raise AccountError(422, f"password: at least {min_length} characters")
    if len(password) > security.MAX_PASSWORD_LENGTH:
        raise AccountError(422, f"password: at most {security.MAX_PASSWORD_LENGTH} characters")


def _check_role(session: Session, role: str, department_id: str | None) -> None:
    if role not in USER_ROLES:
        raise AccountError(422, f"role: {role!r} is not one of {', '.join(USER_ROLES)}")
    if role == "department" and not department_id:
        raise AccountError(422, "department: a department user needs one")
    if department_id is not None and session.get(Department, department_id) is None:
        raise AccountError(422, f"department: no department {department_id!r}")


def add_user(
    session: Session,
    *,
    username: str,
    role: str,
    department_id: str | None,
    password: str,
    min_length: int,
    by: str,
) -> User:
    """Create a user with an argon2 hash of `password`."""
    if not USERNAME.match(username):
        raise AccountError(422, "username: 1-64 letters, digits, '.', '_', '@' or '-'")
    _check_role(session, role, department_id)
    check_password(password, min_length)
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise AccountError(409, f"user {username!r} exists")
    user = User(
        username=username,
        role=role,
        department_id=department_id,
        password_hash=security.hash_password(password),
    )
    session.add(user)
    session.flush()
    audit(
        session, by, "user.add", {"username": username, "role": role, "department": department_id}
    )
    return user


def end_sessions(session: Session, user: User) -> None:
    """Log the user out everywhere (after a password change, when disabled)."""
    session.execute(sa.delete(WebSession).where(WebSession.user_id == user.id))


def update_user(
    session: Session,
    username: str,
    *,
    by: str,
    role: str | None = None,
    department_id: str | None = None,
    disabled: bool | None = None,
) -> User:
    """Change role, department or the disabled flag; a disabled user is logged out and
    its tokens stop working (they work again if the user is enabled)."""
    user = get_user(session, username)
    changes: dict[str, Any] = {}
    if role is not None or department_id is not None:
        new_role, new_dept = role or user.role, department_id or user.department_id
        _check_role(session, new_role, new_dept)
        changes.update(role=new_role, department=new_dept)
        user.role, user.department_id = new_role, new_dept
    if disabled is not None and disabled != user.disabled:
        if disabled and by == user.username:
            raise AccountError(409, "you cannot disable your own account")
        user.disabled = disabled
        changes["disabled"] = disabled
        if disabled:
            end_sessions(session, user)
    if changes:
        action = {True: "user.disable", False: "user.enable"}.get(changes.get("disabled"))
        audit(session, by, action or "user.update", {"username": username, **changes})
    return user


def set_password(
    session: Session, username: str, password: str, *, min_length: int, by: str
) -> User:
    """A new password; every session of the user ends."""
    user = get_user(session, username)
    check_password(password, min_length)
    user.password_hash = security.hash_password(password)
    end_sessions(session, user)
    audit(session, by, "user.password", {"username": username})
    return user


def issue_token(session: Session, username: str, name: str, *, by: str) -> IssuedToken:
    """A new API token for the user."""
    user = get_user(session, username)
    name = name.strip()
    if not name or len(name) > TOKEN_NAME_MAX:
        raise AccountError(422, f"name: 1-{TOKEN_NAME_MAX} characters")
    secret = security.new_token(security.API_TOKEN_PREFIX)
    token = ApiToken(user_id=user.id, token_hash=security.token_digest(secret), name=name)
    session.add(token)
    session.flush()
    audit(session, by, "token.issue", {"username": username, "token_id": token.id, "name": name})
    return IssuedToken(token, secret)


def list_tokens(session: Session, username: str) -> list[ApiToken]:
    user = get_user(session, username)
    return list(
        session.scalars(
            sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
        )
    )


def revoke_tokens(
    session: Session, username: str, *, by: str, token_id: int | None = None
) -> list[int]:
    """Revoke one token (`token_id`) or every live token of the user; returns their ids."""
    user = get_user(session, username)
    query = sa.select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    tokens = list(session.scalars(query))
    if token_id is not None and not tokens:
        raise AccountError(404, f"no live token {token_id} of {username!r}")
    now = now_utc()
    for token in tokens:
        token.revoked_at = now
    if tokens:
        audit(
            session, by, "token.revoke", {"username": username, "token_ids": [t.id for t in tokens]}
        )
    return [t.id for t in tokens]
