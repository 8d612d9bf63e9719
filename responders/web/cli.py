"""`yuqing users`: add, list, disable, password, token (DESIGN: Command line).

For the operator on the server, before any admin can log in (the first admin is made
here). Each change is in the audit log with the actor `cli:<system user>`. A generated
password or token is printed once on stdout and exists nowhere else afterwards.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from pipeline.settings import Settings

users_app = typer.Typer(help="Web users: roles, passwords, API tokens.", no_args_is_help=True)
T = TypeVar("T")

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from stdin's first line")
]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _session() -> Iterator[tuple[Session, Settings]]:
    """A session in a transaction (committed at the end) and the settings; an account
    error exits 1 with its message, a missing schema 2."""
    from pipeline.cli import fail, settings
    from pipeline.storage.db import make_engine, session_factory
    from responders.web.accounts import AccountError

    s = settings()
    engine = make_engine(s.resolved_database_url)
    try:
        with session_factory(engine).begin() as session:
            yield session, s
    except AccountError as exc:
        raise fail(str(exc), 1) from None
    finally:
        engine.dispose()


def _password(from_stdin: bool) -> tuple[str, bool]:
    """The password and whether it was generated (then it must be shown)."""
    from responders.web.security import random_password

    if not from_stdin:
        return random_password(), True
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise typer.BadParameter("no password on stdin", param_hint="--password-stdin")
    return line, False


def _run(change: Callable[..., T], *args: object, **kwargs: object) -> T:
    with _session() as (session, _):
        return change(session, *args, **kwargs)


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option("--role", help="press | department | leader | admin")],
    department: Annotated[
        str | None, typer.Option("--department", help="department id (department users)")
    ] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user; without --password-stdin a password is generated and printed once."""
    from responders.web import accounts

    password, generated = _password(password_stdin)
    with _session() as (session, s):
        accounts.add_user(
            session,
            username=name,
            role=role,
            department_id=department,
            password=password,
            min_length=s.web_password_min_length,
            by=_actor(),
        )
    typer.echo(f"user {name} added ({role}{f', {department}' if department else ''})", err=True)
    if generated:
        typer.echo(password)


@users_app.command("list")
def users_list() -> None:
    """Users as JSON Lines: username, role, department, disabled, last login."""
    from responders.web.accounts import list_users
    from responders.web.schemas import UserOut

    for user in _run(list_users):
        typer.echo(
            json.dumps(UserOut.model_validate(user).model_dump(mode="json"), ensure_ascii=False)
        )


@users_app.command("disable")
def users_disable(
    name: str,
    enable: Annotated[bool, typer.Option("--enable", help="enable again instead")] = False,
) -> None:
    """Disable a user: its sessions end and its API tokens stop working."""
    from responders.web.accounts import update_user

    _run(update_user, name, by=_actor(), disabled=not enable)
    typer.echo(f"user {name} {'enabled' if enable else 'disabled'}", err=True)


@users_app.command("password")
def users_password(name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (generated and printed once unless --password-stdin); the
    user's sessions end."""
    from responders.web.accounts import set_password

    password, generated = _password(password_stdin)
    with _session() as (session, s):
        set_password(session, name, password, min_length=s.web_password_min_length, by=_actor())
    typer.echo(f"password of {name} changed", err=True)
    if generated:
        typer.echo(password)


@users_app.command("token")
def users_token(
    name: str,
    revoke: Annotated[bool, typer.Option("--revoke", help="revoke the user's tokens")] = False,
    label: Annotated[str, typer.Option("--name", help="what the token is for")] = "cli",
    token_id: Annotated[
        int | None, typer.Option("--id", help="with --revoke: only this token")
    ] = None,
) -> None:
    """Issue an API token (printed once), or with --revoke revoke the user's tokens."""
    from responders.web.accounts import issue_token, revoke_tokens

    if revoke:
        ids = _run(revoke_tokens, name, by=_actor(), token_id=token_id)
        typer.echo(f"revoked {len(ids)} token(s) of {name}", err=True)
        return
    issued = _run(issue_token, name, label, by=_actor())
    typer.echo(f"token {issued.token.id} ({label}) for {name}", err=True)
    typer.echo(issued.secret)


def register_commands(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
