"""Who may open which page, and what a refusal looks like as a page.

Pages use the API's own authentication (`auth.authenticate`) and the queue's visibility
rule, so a page never shows what the JSON API would refuse. A page answers a browser,
so refusals are pages too: not logged in → the login page (coming back afterwards),
wrong role → 403 naming where to go instead, another department's alert → the same
404 as a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from responders.web import auth
from responders.web.auth import DB, Principal
from responders.web.pages.render import HOME, page


class PageError(Exception):
    """A refusal shown as a page: status, what happened, what to do about it."""

    def __init__(self, status: int, title: str, hint: str):
        self.status = status
        self.title = title
        self.hint = hint
        super().__init__(title)


class LoginRequired(Exception):
    """No valid session: send the browser to the login page."""


def local_path(target: str | None) -> str | None:
    """`target` if it is a path on this site (never `//host` or `https://…`)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


def viewer(request: Request, session: DB) -> Principal:
    """Dependency: the logged-in caller of a page (else to the login page)."""
    try:
        principal = auth.authenticate(request, session)
    except HTTPException as exc:
        raise LoginRequired from exc
    request.state.principal = principal  # for the error page's navigation
    return principal


Viewer = Annotated[Principal, Depends(viewer)]

#: What each refused role should open instead.
REFUSAL_HINT = "这个页面不属于你的角色。请从顶部导航进入你的工作页面；如需权限请联系系统管理员。"


def role(*roles: str) -> Any:
    """Dependency: the caller, who must have one of `roles` (a 403 page otherwise)."""

    def check(principal: Viewer) -> Principal:
        if principal.role not in roles:
            raise PageError(403, "无权访问此页面", REFUSAL_HINT)
        return principal

    return Depends(check)


async def page_error(request: Request, exc: Exception) -> Response:
    """PageError → the error page (with the caller's navigation when logged in)."""
    assert isinstance(exc, PageError)
    principal = getattr(request.state, "principal", None)
    return page(
        request,
        "error.html",
        principal,
        status=exc.status,
        title=exc.title,
        hint=exc.hint,
        home=HOME.get(principal.role, "/") if principal else "/login",
    )


async def login_required(request: Request, _exc: Exception) -> Response:
    """LoginRequired → 303 to `/login?next=<this page>`."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


def not_found_page(request: Request, principal: Principal) -> HTMLResponse:
    """The refusal of an alert the caller may not see: the same as one that does not exist."""
    return page(
        request,
        "error.html",
        principal,
        status=404,
        title="找不到这条告警",
        hint="它可能不存在，或不属于你的部门。请回到列表，从列表中打开告警。",
        home=HOME.get(principal.role, "/"),
    )
