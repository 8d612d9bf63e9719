"""The `web` stage (`yuqing run web`): the API served by uvicorn on `YUQING_WEB_BIND`.

Proxy headers (`X-Forwarded-For`, `-Proto`) are believed only from
`YUQING_WEB_FORWARDED_ALLOW_IPS`, since login rate limiting keys on the client address
and the session cookie's `Secure` flag on the scheme."""

from __future__ import annotations

import logging
import threading

import uvicorn

from pipeline.runner import Stage, StopFlag
from pipeline.settings import Settings

log = logging.getLogger(__name__)


def server(settings: Settings, **kwargs: object) -> uvicorn.Server:
    """A uvicorn server for the app on the settings' database; `kwargs` go to create_app."""
    from responders.web.app import create_app

    app = create_app(settings, **kwargs)  # type: ignore[arg-type]
    config = uvicorn.Config(
        app,
        host=settings.web_host,
        port=settings.web_port,
        proxy_headers=True,
        forwarded_allow_ips=settings.web_forwarded_allow_ips,
        log_config=None,  # the process's logging, as every stage
        access_log=False,  # /metrics counts requests; logins are logged by the app
        timeout_graceful_shutdown=5,  # event streams never end on their own
    )
    return uvicorn.Server(config)


class WebStage(Stage):
    name = "web"

    def run(self, stop: StopFlag) -> None:
        srv = server(self.ctx.settings, engine=self.ctx.engine, bus=self.ctx.bus)

        def watch() -> None:  # a stop set by a test or the runner, not only by a signal
            while not srv.should_exit:
                if stop.wait(0.5):
                    srv.should_exit = True

        threading.Thread(target=watch, name="web-stop", daemon=True).start()
        log.info("web: serving on http://%s", self.ctx.settings.web_bind)
        srv.run()
        stop.set()
