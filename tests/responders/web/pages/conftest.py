"""Browser fixtures: headless Debian Chromium driven by Playwright against the real
uvicorn server of `live_server` (Playwright's own browser download is not used)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: apt-get install -y chromium (see .ci/run)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


class Tab:
    """A browser tab on the live server, recording every JavaScript dialog it meets."""

    def __init__(self, browser: Any, base: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.base = base
        self.dialogs: list[str] = []

        def record(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", record)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def login(self, username: str, password: str | None = None) -> None:
        from tests.responders.web.conftest import PASSWORD

        self.goto("/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password or PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()


@pytest.fixture
def tabs(browser: Any, live_server: str) -> Iterator[Any]:
    """`tabs()` opens a fresh tab (own cookies) on the live server."""
    opened: list[Tab] = []

    def open_tab() -> Tab:
        opened.append(Tab(browser, live_server))
        return opened[-1]

    yield open_tab
    for tab in opened:
        tab.context.close()
