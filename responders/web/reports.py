"""`GET /api/reports/weekly` and `GET /api/reports`: the weekly report and its archive,
for the leaders and the press office only (DESIGN: HTTP API).

A week in the archive is served as it was generated on Monday, so every reader sees the
figures the leaders saw; any other past or current week is generated on request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel

from pipeline.messages import now_utc
from pipeline.settings import ConfigError
from responders.reports.archive import archive_list, archived
from responders.reports.config import ReportOptions
from responders.reports.render import MEDIA_TYPES, render
from responders.reports.weekly import IsoWeek, build_weekly
from responders.web.auth import DB, Principal, require, settings_of

router = APIRouter(prefix="/api/reports", tags=["reports"])

Reader = Annotated[Principal, require("leader", "press")]
#: The HTML report carries its styles inline and runs no script.
HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


class ArchivedReport(BaseModel):
    week: str
    format: Literal["html", "pdf", "json"]
    generated_at: datetime
    bytes: int
    url: str


def _options(request: Request) -> ReportOptions:
    try:
        return ReportOptions.load(settings_of(request))
    except ConfigError as exc:
        raise HTTPException(500, f"report configuration: {exc}") from None


@router.get("", response_model=list[ArchivedReport])
def list_reports(session: DB, _caller: Reader) -> list[ArchivedReport]:
    """The weekly reports generated so far, newest week first."""
    return [
        ArchivedReport(**row, url=f"/api/reports/weekly?week={row['week']}&format={row['format']}")
        for row in archive_list(session)
    ]


@router.get(
    "/weekly",
    responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}},
    response_class=Response,
)
def weekly_report(
    request: Request,
    session: DB,
    _caller: Reader,
    week: Annotated[
        str | None, Query(description="ISO week, e.g. 2026-W48 (default: last week)")
    ] = None,
    format: Annotated[Literal["html", "pdf", "json"], Query()] = "json",
) -> Response:
    """The weekly response-effectiveness report of `week`, as HTML, PDF or JSON."""
    options = _options(request)
    now = now_utc()
    try:
        chosen = IsoWeek.parse(week) if week else IsoWeek.before(now, options.tz)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if chosen.window(options.tz).start > now:
        raise HTTPException(422, f"week {chosen} has not begun")
    content = archived(session, chosen, format)
    if content is None:
        content = render(build_weekly(session, chosen, options, now), format)
    headers = {"Content-Disposition": f'inline; filename="yuqing-weekly-{chosen}.{format}"'}
    if format == "html":
        headers["Content-Security-Policy"] = HTML_POLICY
    return Response(content, media_type=MEDIA_TYPES[format], headers=headers)
