"""Crawler fixtures: real HTTP servers on loopback, a Twisted reactor for the session,
a migrated database and a local bus per test.

Scrapy's reactor can start once per process, so the session runs one in a background
thread and every in-process crawl is scheduled on it (`crawl`); tests of the CLI and the
stage run real subprocesses instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crawlers.config import Source, SourcesFile
from crawlers.report import CrawlReport
from crawlers.run import Crawl
from pipeline.bus import Bus
from pipeline.bus.local import LocalBus
from pipeline.messages import TOPIC_POSTS_RAW, Post
from pipeline.runner import ensure_topics
from pipeline.settings import Settings, load_settings
from pipeline.storage.db import upgrade

REPO = Path(__file__).resolve().parents[2]

#: Fast and impolite: tests talk to their own loopback servers.
TEST_OVERRIDES: dict[str, Any] = {
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "DOWNLOAD_DELAY_JITTER": 0,
    "DOWNLOAD_TIMEOUT": 2,
    "RETRY_TIMES": 1,
    "RETRY_BACKOFF_BASE": 0.05,
    "CLOSESPIDER_TIMEOUT": 60,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
}


@dataclass
class Route:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Site:
    """A threaded HTTP server answering from `routes` (path with query → Route)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # The crawler may give up on a slow or oversized page mid-answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.answer()

            def answer(self) -> None:
                site.requests.append((self.path, dict(self.headers)))
                route = site.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.delay:
                    time.sleep(route.delay)
                etag = route.headers.get("ETag")
                if etag and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(route.status)
                for k, v in route.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(
        self,
        path: str,
        body: str | bytes,
        *,
        status: int = 200,
        content_type: str | None = "text/html; charset=utf-8",
        encoding: str = "utf-8",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        raw = body.encode(encoding) if isinstance(body, str) else body
        all_headers = dict(headers or {})
        if content_type:
            all_headers.setdefault("Content-Type", content_type)
        self.routes[path] = Route(raw, status, all_headers, delay)

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.routes[path] = Route(b"", status, {"Location": to})

    def hits(self, prefix: str) -> int:
        return sum(1 for p, _ in self.requests if p.startswith(prefix))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.close()


class ReactorThread:
    """The session's Twisted reactor (Scrapy's asyncio one), running in a thread."""

    def __init__(self) -> None:
        from scrapy.utils.reactor import set_asyncio_event_loop_policy
        from twisted.internet import asyncioreactor

        # Scrapy's default reactor, on an event loop of its own: `install_reactor` would
        # take the main thread's current loop, and Playwright's sync API (the browser
        # tests' session fixture) leaves its loop running there, so the reactor thread
        # could not run it and the crawl tests after the browser tests hung.
        set_asyncio_event_loop_policy()
        asyncioreactor.install(eventloop=asyncio.new_event_loop())
        from twisted.internet import reactor

        self.reactor = reactor
        self.thread = threading.Thread(
            target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
        )
        self.thread.start()

    def run(self, crawl: Crawl, timeout: float = 90) -> None:
        from scrapy.crawler import CrawlerRunner
        from twisted.internet.threads import blockingCallFromThread

        done = threading.Event()
        errors: list[BaseException] = []

        def start() -> None:
            runner = CrawlerRunner(crawl.scrapy_settings())
            d = runner.crawl(crawl.spider_class, ctx=crawl.ctx)
            d.addErrback(lambda f: errors.append(f.value))
            d.addBoth(lambda _: done.set())

        blockingCallFromThread(self.reactor, start)
        assert done.wait(timeout), "crawl did not finish"
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def reactor_thread() -> ReactorThread:
    return ReactorThread()


@pytest.fixture
def yq(isolated_env: Path) -> Settings:
    """Settings on this test's data dir, database migrated, topics created."""
    s = load_settings(secret_key="test-secret")
    upgrade(s.resolved_database_url)
    return s


@pytest.fixture
def bus(yq: Settings) -> Iterator[LocalBus]:
    b = LocalBus(yq.data_dir / "bus.sqlite3", retention_hours=24)
    ensure_topics(b, yq)
    yield b
    b.close()


def make_source(data: dict[str, Any]) -> Source:
    """A validated source from a dict as it would appear in sources.yaml."""
    data = {"name": data.get("id", "test"), **data}
    return SourcesFile.model_validate({"sources": [data]}).sources[0]


CrawlFn = Callable[..., CrawlReport]


@pytest.fixture
def crawl(reactor_thread: ReactorThread, yq: Settings, bus: LocalBus) -> CrawlFn:
    """Run one crawl of `source` (a dict or a Source) in the session reactor."""

    def run(
        source: dict[str, Any] | Source,
        *,
        dry_run: bool = False,
        out: Any = None,
        on_bus: Bus | None = None,
        **overrides: Any,
    ) -> CrawlReport:
        src = make_source(source) if isinstance(source, dict) else source
        c = Crawl(
            yq,
            src,
            dry_run=dry_run,
            out=out,
            bus=on_bus or bus,
            overrides={**TEST_OVERRIDES, **overrides},
        )
        c.open()
        try:
            reactor_thread.run(c)
        finally:
            report = c.close()
        return report

    return run


def read_posts(bus: Bus, group: str = "test-reader", expect: int | None = None) -> list[Post]:
    """Every post on posts.raw not yet read by `group`."""
    posts: list[Post] = []
    with bus.consumer([TOPIC_POSTS_RAW], group) as consumer:
        deadline = time.monotonic() + 10
        idle = 0
        while time.monotonic() < deadline:
            batch = consumer.poll(500, 0.3)
            posts.extend(Post.from_json(r.value) for r in batch)
            consumer.commit(batch)
            if expect is not None and len(posts) >= expect:
                break
            idle = 0 if batch else idle + 1
            if expect is None and idle >= 2:
                break
    return posts
