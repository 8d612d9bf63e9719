"""The page routes: login, the press office's stream, the alert page, a department's
queue and history, the leader's overview, and the admin pages.

Pages are rendered on the server from the same service functions as the JSON API
(`alerts.alert_detail`, `alerts.alert_filters`, `queue.visible`, `accounts`); every
change is made by the page's script calling the JSON API with the session's CSRF token,
so the API's checks and audit log apply to the pages unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import sqlalchemy as sa
import yaml
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pipeline.messages import now_utc
from pipeline.storage.models import (
    OPEN_ALERT_STATES,
    RESPONSE_CHANNELS,
    SENTIMENTS,
    Alert,
    ApiToken,
    CrawlSource,
    Department,
    User,
)
from responders import queue
from responders.reports.archive import archive_list
from responders.web import accounts, auth, security
from responders.web.alerts import alert_detail
from responders.web.auth import DB, Principal
from responders.web.pages import queries
from responders.web.pages.access import Viewer, local_path, not_found_page, role
from responders.web.pages.chart import timeline_chart
from responders.web.pages.render import HOME, labels, page

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "yuqing_login_csrf"
LOGIN_BODY_MAX = 8192

Press = Annotated[Principal, role("press", "leader", "admin")]
Department_ = Annotated[Principal, role("department")]
Leader = Annotated[Principal, role("leader", "press")]
Admin = Annotated[Principal, role("admin")]


@router.get("/")
def home(principal: Viewer) -> RedirectResponse:
    """Each role's own start page."""
    return RedirectResponse(HOME[principal.role], status_code=303)


# --- login ------------------------------------------------------------------------------


def _login_page(
    request: Request,
    *,
    error: str | None = None,
    username: str = "",
    next_path: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The login form with a fresh double-submit token (cookie + hidden field): the form
    posts only together with the cookie this site set, so another site cannot log a
    browser in to an account of its choosing."""
    token = security.new_token()
    response = page(
        request,
        "login.html",
        None,
        status=status,
        error=error,
        username=username,
        next_path=next_path or "",
        login_csrf=token,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_page(request, next_path=local_path(next))


@router.post("/login")
async def login_submit(request: Request) -> Response:
    """The form's POST (urlencoded); answers the form again with what to do on failure."""
    body = await request.body()
    if len(body) > LOGIN_BODY_MAX:
        return _login_page(request, error="提交的内容过长，请重新输入。", status=413)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    return await run_in_threadpool(_login, request, form)


def _login(request: Request, form: dict[str, str]) -> Response:
    username = form.get("username", "").strip()[:64]
    password = form.get("password", "")[: security.MAX_PASSWORD_LENGTH]
    target = local_path(form.get("next"))
    again = {"username": username, "next_path": target}
    if not security.same_secret(form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE) or ""):
        error = "登录表单已过期（或浏览器禁用了 Cookie）。页面已刷新，请重新输入密码登录。"
        return _login_page(request, error=error, status=400, **again)
    if not username or not password:
        return _login_page(request, error="请输入用户名和密码。", status=400, **again)
    response = RedirectResponse(target or "/", status_code=303)
    with request.app.state.web.sessions() as session:
        try:
            principal = auth.login(request, response, session, username, password)
        except HTTPException as exc:
            if exc.status_code == 429:
                minutes = round(request.app.state.web.settings.web_login_window_minutes)
                error = (
                    f"登录失败次数过多，已暂时锁定。请 {minutes} 分钟后再试；"
                    "如果忘记了密码，请联系系统管理员重置。"
                )
            else:
                error = (
                    "用户名或密码错误。请检查用户名、大小写和输入法后重试；"
                    "忘记密码或账号被停用，请联系系统管理员。"
                )
            return _login_page(request, error=error, status=exc.status_code, **again)
    if target is None:
        response.headers["location"] = HOME[principal.role]
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


# --- press office: the stream -----------------------------------------------------------


@router.get("/press")
def press_stream(request: Request, session: DB, principal: Press) -> HTMLResponse:
    """Alerts matching the filter form, newest first; `app.js` adds live changes."""
    filters = queries.Filters.of(request.query_params)
    since = queries.last_log_id(session)
    rows = queries.alert_list(session, principal, filters)
    older = None
    if len(rows) == queries.PAGE_ROWS:  # the next page: raised before the oldest shown
        oldest = rows[-1].created_at.astimezone(labels_tz(request))
        params = {**request.query_params, "until": oldest.strftime("%Y-%m-%dT%H:%M:%S")}
        older = "?" + urlencode(params)
    return page(
        request,
        "press.html",
        principal,
        since=since,
        rows=rows,
        filters=filters,
        older=older,
        states=["open", *queue.ALL_STATES, "all"],
        sentiments=SENTIMENTS,
        topics=queries.topics(session),
        sources=queries.source_ids(session),
    )


def labels_tz(request: Request) -> Any:
    return labels(request.app.state.web.settings).tz


@router.get("/fragments/alert-row/{alert_id}")
def alert_row(
    alert_id: str,
    request: Request,
    session: DB,
    principal: Viewer,
    view: Annotated[str, Query(pattern="^(press|queue)$")] = "press",
) -> Response:
    """One table row, as the list pages render it, for the live update of a row; 204 when
    the alert does not match the page's filters (or is not the caller's to see)."""
    filters = queries.Filters.of(request.query_params)
    if view == "queue":
        filters = queries.Filters(state="open")
    alert = queries.matching_alert(session, principal, filters, alert_id)
    if alert is None:
        return Response(status_code=204)
    return page(request, "row.html", principal, alert=alert, view=view)


# --- one alert --------------------------------------------------------------------------


def available_actions(principal: Principal, state: str) -> set[str]:
    """The queue actions the caller's role may take in the alert's state."""
    allowed = queue.ROLE_ACTIONS.get(principal.role, frozenset())
    return {a for a in allowed if state in queue.FROM_STATES[a]}


@router.get("/alerts/{alert_id}")
def alert_page(alert_id: str, request: Request, session: DB, principal: Viewer) -> HTMLResponse:
    """The alert with its posts, spread, explanation, responses, audit log and the
    actions the caller may take; another department's alert is a 404 page."""
    since = queries.last_log_id(session)
    try:
        alert = queue.get_alert(session, alert_id, principal.actor())
    except queue.QueueError:
        return not_found_page(request, principal)
    detail = alert_detail(session, alert)
    tz = labels_tz(request)
    chart = timeline_chart(detail.event.timeline, tz) if detail.event else None
    return page(
        request,
        "alert.html",
        principal,
        since=since,
        alert=detail,
        chart=chart,
        actions=available_actions(principal, alert.state),
        channels=RESPONSE_CHANNELS,
        pending=queries.pending_deadlines(alert),
    )


# --- a department -----------------------------------------------------------------------


@router.get("/queue")
def department_queue(request: Request, session: DB, principal: Department_) -> HTMLResponse:
    """The department's open alerts, the nearest deadline first."""
    since = queries.last_log_id(session)
    rows = queries.department_queue(session, principal)
    return page(request, "queue.html", principal, rows=rows, since=since)


@router.get("/queue/history")
def department_history(request: Request, session: DB, principal: Department_) -> HTMLResponse:
    return page(
        request,
        "history.html",
        principal,
        rows=queries.department_history(session, principal),
        actions=queries.my_actions(session, principal),
    )


# --- the leader -------------------------------------------------------------------------


def report_weeks(session: DB) -> list[dict[str, Any]]:
    """The archived weekly reports, one entry per week (newest first) with its formats."""
    weeks: dict[str, dict[str, Any]] = {}
    for row in archive_list(session):
        entry = weeks.setdefault(
            row["week"], {"week": row["week"], "generated_at": row["generated_at"], "formats": []}
        )
        entry["formats"].append(row["format"])
    return list(weeks.values())


@router.get("/leader")
def leader_overview(request: Request, session: DB, principal: Leader) -> HTMLResponse:
    """This week by department, open and overdue now, and the reports archive."""
    now = now_utc()
    tz = labels_tz(request)
    lines = queries.overview(session, now, tz)
    return page(
        request,
        "leader.html",
        principal,
        lines=lines,
        total=queries.totals(lines),
        week_start=queries.week_start(now, tz),
        overdue=queries.overdue_alerts(session),
        reports=report_weeks(session),
    )


# --- admin ------------------------------------------------------------------------------


@router.get("/admin/users")
def admin_users(request: Request, session: DB, principal: Admin) -> HTMLResponse:
    tokens = dict(
        session.execute(
            sa.select(ApiToken.user_id, sa.func.count())
            .where(ApiToken.revoked_at.is_(None))
            .group_by(ApiToken.user_id)
        ).all()
    )
    return page(
        request,
        "admin_users.html",
        principal,
        users=accounts.list_users(session),
        tokens=tokens,
        roles=["press", "department", "leader", "admin"],
    )


@router.get("/admin/departments")
def admin_departments(request: Request, session: DB, principal: Admin) -> HTMLResponse:
    users = dict(
        session.execute(
            sa.select(User.department_id, sa.func.count())
            .where(User.department_id.is_not(None), ~User.disabled)
            .group_by(User.department_id)
        ).all()
    )
    open_alerts = dict(
        session.execute(
            sa.select(Alert.department_id, sa.func.count())
            .where(Alert.state.in_(OPEN_ALERT_STATES))
            .group_by(Alert.department_id)
        ).all()
    )
    rows = session.scalars(sa.select(Department).order_by(Department.id)).all()
    return page(
        request,
        "admin_departments.html",
        principal,
        rows=rows,
        users=users,
        open_alerts=open_alerts,
    )


def configured_sources(request: Request) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The sources file's entries by id (name, kind, enabled, interval), and a problem
    reading it if any: the page still shows the crawl state then."""
    settings = request.app.state.web.settings
    path = Path(settings.sources_file)
    path = path if path.is_absolute() else Path(settings.config_dir) / path
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        entries = [s for s in data.get("sources") or [] if isinstance(s, dict) and "id" in s]
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        log.warning("admin sources page: cannot read %s: %s", path, exc)
        return {}, f"无法读取 {path.name}：{exc}。请运行 yuqing config check 查看问题。"
    return {str(s["id"]): s for s in entries}, None


@router.get("/admin/sources")
def admin_sources(request: Request, session: DB, principal: Admin) -> HTMLResponse:
    """Every configured or crawled source with its health; blocked ones first, in red."""
    configured, problem = configured_sources(request)
    states = {s.source_id: s for s in session.scalars(sa.select(CrawlSource))}
    order = {"blocked": 0, "failing": 1, "never": 2, "ok": 3}
    ids = sorted(
        set(configured) | set(states),
        key=lambda i: (order.get(states[i].status if i in states else "never", 2), i),
    )
    rows = [(i, configured.get(i), states.get(i)) for i in ids]
    blocked = sum(1 for s in states.values() if s.status == "blocked")
    return page(
        request, "admin_sources.html", principal, rows=rows, problem=problem, blocked=blocked
    )
