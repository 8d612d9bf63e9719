"""User administration (admin only): the API side of `yuqing users`.

The same functions as the command line (`accounts`), so both validate alike and both
write the audit log, here with the admin's username as the actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from responders.web import accounts, security
from responders.web.auth import DB, Principal, require
from responders.web.schemas import (
    NewPassword,
    NewToken,
    NewUser,
    PasswordSet,
    TokenIssued,
    TokenOut,
    UserChange,
    UserCreated,
    UserOut,
)

router = APIRouter(prefix="/api/users", tags=["users"])
Admin = Annotated[Principal, require("admin")]


def _min_length(request: Request) -> int:
    return request.app.state.web.settings.web_password_min_length


@router.get("", response_model=list[UserOut])
def list_users(session: DB, _admin: Admin) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in accounts.list_users(session)]


@router.post("", response_model=UserCreated, status_code=201)
def add_user(body: NewUser, request: Request, session: DB, admin: Admin) -> UserCreated:
    """Create a user; without `password` one is generated and returned this once."""
    password = body.password or security.random_password()
    user = accounts.add_user(
        session,
        username=body.username,
        role=body.role,
        department_id=body.department,
        password=password,
        min_length=_min_length(request),
        by=admin.username,
    )
    session.commit()
    return UserCreated(
        user=UserOut.model_validate(user), password=None if body.password else password
    )


@router.get("/{username}", response_model=UserOut)
def get_user(username: str, session: DB, _admin: Admin) -> UserOut:
    return UserOut.model_validate(accounts.get_user(session, username))


@router.patch("/{username}", response_model=UserOut)
def change_user(username: str, body: UserChange, session: DB, admin: Admin) -> UserOut:
    """Change role, department, or disable (logs the user out) and enable again."""
    user = accounts.update_user(
        session,
        username,
        by=admin.username,
        role=body.role,
        department_id=body.department,
        disabled=body.disabled,
    )
    session.commit()
    return UserOut.model_validate(user)


@router.post("/{username}/password", response_model=PasswordSet)
def set_password(
    username: str, body: NewPassword, request: Request, session: DB, admin: Admin
) -> PasswordSet:
    """A new password (generated and returned once if not given); ends the user's sessions."""
    password = body.password or security.random_password()
    accounts.set_password(
        session, username, password, min_length=_min_length(request), by=admin.username
    )
    session.commit()
    return PasswordSet(password=None if body.password else password)


@router.get("/{username}/tokens", response_model=list[TokenOut])
def list_tokens(username: str, session: DB, _admin: Admin) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in accounts.list_tokens(session, username)]


@router.post("/{username}/tokens", response_model=TokenIssued, status_code=201)
def issue_token(username: str, body: NewToken, session: DB, admin: Admin) -> TokenIssued:
    """A bearer token for another system; the secret is returned this once."""
    issued = accounts.issue_token(session, username, body.name, by=admin.username)
    session.commit()
    return TokenIssued(token=TokenOut.model_validate(issued.token), secret=issued.secret)


@router.delete("/{username}/tokens/{token_id}", status_code=204)
def revoke_token(username: str, token_id: int, session: DB, admin: Admin) -> Response:
    accounts.revoke_tokens(session, username, by=admin.username, token_id=token_id)
    session.commit()
    return Response(status_code=204)
