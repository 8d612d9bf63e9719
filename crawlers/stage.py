"""The `crawler` stage (`yuqing run crawler`) and `yuqing crawl SOURCE_ID [--dry-run]`.

The stage crawls each enabled source on its own interval. Each crawl runs in a child
process (`python -m crawlers.run`): Scrapy's reactor starts once per process, and a
crawl that hangs, leaks or crashes is killed or reaped without touching the others.
When a source is due comes from the database (`crawl_sources.next_due_at`), so a
restarted stage picks up where it was instead of crawling everything at once; a crawl
still running in an orphaned child (the stage was killed) is not started twice.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from crawlers import metrics
from crawlers import settings as defaults
from crawlers.config import Source, SourcesFile, load_sources, sources_path
from crawlers.report import CrawlReport
from crawlers.state import CrawlState, source_rows
from pipeline.messages import now_utc
from pipeline.runner import Stage, StopFlag
from pipeline.settings import ConfigError

log = logging.getLogger(__name__)

#: A child still running this long after CLOSESPIDER_TIMEOUT is killed.
KILL_GRACE = timedelta(seconds=120)
STOP_GRACE = 20.0


@dataclass
class Child:
    source: Source
    proc: subprocess.Popen[bytes]
    report_path: Path
    started: float


class CrawlerStage(Stage):
    name = "crawler"

    def __init__(self, ctx: Any):
        super().__init__(ctx)
        self.children: dict[str, Child] = {}
        self.sources: SourcesFile | None = None
        self._sources_mtime = 0.0
        self._tmp = tempfile.TemporaryDirectory(prefix="yuqing-crawl-")
        self.crawl_timeout = timedelta(seconds=defaults.CLOSESPIDER_TIMEOUT) + KILL_GRACE

    # --- the loop -----------------------------------------------------------------------

    def run(self, stop: StopFlag) -> None:
        self._restore_gauges()
        log.info("crawler: sources from %s", sources_path(self.ctx.settings))
        try:
            while not stop:
                self._reload_sources()
                self._reap()
                self._start_due()
                stop.wait(1.0)
        finally:
            self._stop_children()

    def _reload_sources(self) -> None:
        """Re-read sources.yaml when it changed; a broken edit keeps the last good one."""
        path = sources_path(self.ctx.settings)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = -1.0
        if self.sources is not None and mtime == self._sources_mtime:
            return
        self._sources_mtime = mtime
        try:
            self.sources = load_sources(self.ctx.settings)
        except ConfigError as exc:
            log.error("crawler: %s (keeping the previous sources)", exc)
            if self.sources is None:
                self.sources = SourcesFile()
            return
        enabled = [s.id for s in self.sources.sources if s.enabled]
        log.info("crawler: %d sources enabled: %s", len(enabled), ", ".join(enabled))

    def _due(self, now: datetime) -> list[Source]:
        assert self.sources is not None
        rows = source_rows(self.ctx.sessions)
        due: list[tuple[datetime, Source]] = []
        for source in self.sources.sources:
            if not source.enabled or source.id in self.children:
                continue
            row = rows.get(source.id, {})
            started, finished = row.get("last_started_at"), row.get("last_finished_at")
            running = started and (finished is None or finished < started)
            if running and now - started < self.crawl_timeout:
                continue  # running in another process (an orphan of a killed stage)
            at = row.get("next_due_at") or now
            if at <= now:
                due.append((at, source))
        return [s for _, s in sorted(due, key=lambda d: d[0])]

    def _start_due(self) -> None:
        free = defaults.STAGE_PARALLEL_CRAWLS - len(self.children)
        if free <= 0:
            return
        for source in self._due(now_utc())[:free]:
            self._spawn(source)

    def _spawn(self, source: Source) -> None:
        report_path = Path(self._tmp.name) / f"{source.id}.json"
        report_path.unlink(missing_ok=True)
        env = dict(os.environ, YUQING_METRICS_PORT="0")
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawlers.run", source.id, "--report", str(report_path)],
            env=env,
        )
        self.children[source.id] = Child(source, proc, report_path, time.monotonic())
        log.info("crawler: crawling %s (pid %d)", source.id, proc.pid)

    def _reap(self) -> None:
        for source_id, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None:
                if time.monotonic() - child.started > self.crawl_timeout.total_seconds():
                    log.error("crawler: %s ran too long; killing pid %d", source_id, child.proc.pid)
                    child.proc.kill()
                continue
            del self.children[source_id]
            self._finished(child, code)

    def _finished(self, child: Child, code: int) -> None:
        try:
            report = CrawlReport.from_json(child.report_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            # The child died before it could report: record it so the source is not
            # restarted in a tight loop, and count it.
            report = CrawlReport(source=child.source.id)
            report.error("crashed", f"exit code {code}", logging.ERROR)
            state = CrawlState(self.ctx.sessions, child.source.id, child.source.kind)
            state.load()
            health = state.finished(
                interval=child.source.interval_delta, entries=0, fetched=False,
                not_modified=False, blocked_reason=None, error="crashed", cursor=None,
            )  # fmt: skip
            report.status = health.status
            report.finished_at = now_utc().isoformat()
        report.record_metrics()
        log.info("crawler: %s", report.summary())

    def _restore_gauges(self) -> None:
        """Last-success and blocked gauges as the database has them (after a restart)."""
        for source_id, row in source_rows(self.ctx.sessions).items():
            if row.get("last_success_at"):
                metrics.LAST_SUCCESS.labels(source_id).set(row["last_success_at"].timestamp())
            metrics.BLOCKED.labels(source_id).set(1 if row.get("status") == "blocked" else 0)

    def _stop_children(self) -> None:
        for child in self.children.values():
            child.proc.send_signal(signal.SIGTERM)  # Scrapy finishes in-flight items
        deadline = time.monotonic() + STOP_GRACE
        for child in self.children.values():
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        self.children.clear()

    def close(self) -> None:
        self._tmp.cleanup()

    # --- commands -----------------------------------------------------------------------

    @classmethod
    def register_commands(cls, app: typer.Typer) -> None:
        @app.command("crawl")
        def crawl(
            source_id: Annotated[str, typer.Argument(help="a source id from sources.yaml")],
            dry_run: Annotated[
                bool,
                typer.Option("--dry-run", help="print posts as JSONL; publish and store nothing"),
            ] = False,
        ) -> None:
            """Crawl one source once and publish its new posts to posts.raw.

            Exit code 0 when the source was crawled, 1 when it failed or is blocked,
            2 for an unknown source or a configuration error."""
            from crawlers.run import run_crawl
            from pipeline.cli import fail, settings
            from pipeline.storage.db import upgrade

            s = settings()
            try:
                source = load_sources(s).get(source_id)
            except ConfigError as exc:
                raise fail(str(exc)) from None
            except KeyError as exc:
                raise fail(str(exc.args[0])) from None
            if not dry_run:
                upgrade(s.resolved_database_url)
            report = run_crawl(s, source, dry_run=dry_run)
            typer.echo(report.summary(), err=True)
            if report.status != "ok":
                raise typer.Exit(1)
