"""The web pages (press office, departments, leaders, admin) on top of the JSON API.

Server-rendered Jinja2 templates in Simplified Chinese, one stylesheet and one small
script served by the app itself (no CDN). `install` adds them to an app made by
`create_app`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from responders.web.pages.access import LoginRequired, PageError, login_required, page_error
from responders.web.pages.render import HERE


def install(app: FastAPI) -> None:
    """Page routes, their error pages, and `/static`."""
    from responders.web.pages.views import router

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(LoginRequired, login_required)
