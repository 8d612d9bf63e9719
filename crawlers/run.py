"""One crawl of one source, start to finish.

    python -m crawlers.run SOURCE_ID [--report FILE]

Scrapy's Twisted reactor starts once per process, so a process runs one crawl (the
`crawler` stage starts a child per crawl; `yuqing crawl` is itself a fresh process).
`Crawl` holds what surrounds the Scrapy run: crawl state, the bus producer, the report;
whoever owns a reactor runs the spider in between `open` and `close`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import IO, Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings as ScrapySettings

from crawlers import settings as crawl_defaults
from crawlers.config import Source, load_sources
from crawlers.context import BusSink, CrawlContext, JsonlSink
from crawlers.report import CrawlReport
from crawlers.spiders import SPIDERS, SourceSpider
from crawlers.state import CrawlState
from pipeline.bus import Bus, Producer, open_bus
from pipeline.messages import now_utc
from pipeline.settings import Settings, load_settings

log = logging.getLogger(__name__)


def scrapy_settings(source: Source, overrides: dict[str, Any] | None = None) -> ScrapySettings:
    """`crawlers.settings` with the source's politeness overrides (and a caller's, last)."""
    s = ScrapySettings()
    s.setmodule(crawl_defaults, priority="project")
    per_source = {
        "ROBOTSTXT_OBEY": source.robots,
        "USER_AGENT": source.user_agent,
        "DOWNLOAD_DELAY": source.download_delay,
        "CONCURRENT_REQUESTS_PER_DOMAIN": source.concurrency,
        "DOWNLOAD_TIMEOUT": source.timeout,
        "DOWNLOAD_MAXSIZE": source.max_bytes,
    }
    s.setdict({k: v for k, v in per_source.items() if v is not None}, priority="spider")
    if source.max_bytes is not None:
        s.set("DOWNLOAD_WARNSIZE", min(source.max_bytes, s.getint("DOWNLOAD_WARNSIZE")), "spider")
    headers = dict(s.getdict("DEFAULT_REQUEST_HEADERS"))
    headers["Accept-Language"] = "zh-CN,zh;q=0.9,en;q=0.5"
    s.set("DEFAULT_REQUEST_HEADERS", headers, "spider")
    s.setdict(overrides or {}, priority="cmdline")
    return s


class Crawl:
    """Everything around one Scrapy run of one source."""

    def __init__(
        self,
        settings: Settings,
        source: Source,
        *,
        dry_run: bool = False,
        out: IO[str] | None = None,
        bus: Bus | None = None,
        overrides: dict[str, Any] | None = None,
    ):
        self.settings = settings
        self.source = source
        self.dry_run = dry_run
        self.out = out if out is not None else sys.stdout
        self._bus = bus
        self._own_bus: Bus | None = None
        self._producer: Producer | None = None
        self.overrides = overrides
        self.report = CrawlReport(source=source.id)
        self.ctx: CrawlContext | None = None
        self._engine: Any = None

    @property
    def spider_class(self) -> type[SourceSpider]:
        return SPIDERS[self.source.kind]

    def scrapy_settings(self) -> ScrapySettings:
        return scrapy_settings(self.source, self.overrides)

    def open(self) -> CrawlContext:
        """Crawl state marked started and the producer opened (nothing for a dry run)."""
        state = None
        if self.dry_run:
            sink: Any = JsonlSink(self.out)
        else:
            from pipeline.runner import ensure_topics
            from pipeline.storage.db import make_engine, session_factory

            self._engine = make_engine(self.settings.resolved_database_url)
            state = CrawlState(session_factory(self._engine), self.source.id, self.source.kind)
            state.started()
            bus = self._bus
            if bus is None:
                bus = self._own_bus = open_bus(self.settings)
                ensure_topics(bus, self.settings)
            self._producer = bus.producer()
            sink = BusSink(self._producer)
        self.ctx = CrawlContext(
            source=self.source,
            salt=self.settings.secret(),
            sink=sink,
            report=self.report,
            state=state,
        )
        return self.ctx

    def close(self) -> CrawlReport:
        """Store the outcome and health, publish metrics, release the producer."""
        report, ctx = self.report, self.ctx
        try:
            if ctx is not None and ctx.state is not None:
                failed_publish = "bus" in report.errors
                if report.blocked is None and not failed_publish:
                    ctx.state.save_validators(ctx.validators)
                top_error = report.errors.most_common(1)[0][0] if report.errors else None
                health = ctx.state.finished(
                    interval=self.source.interval_delta,
                    entries=report.entries,
                    fetched=report.fetched and not failed_publish,
                    not_modified=report.pages == 0 and report.not_modified > 0,
                    blocked_reason=report.blocked,
                    error=top_error,
                    cursor=ctx.cursor,
                )
                if health.status == "blocked" and report.blocked is None:
                    report.block(health.blocked_reason or "blocked")
                report.status = health.status
                report.next_due_at = health.next_due_at.isoformat()
            else:
                report.status = "ok" if report.fetched and not report.blocked else "failing"
                if report.blocked:
                    report.status = "blocked"
        finally:
            report.finished_at = now_utc().isoformat()
            if self._producer is not None:
                self._producer.close()
            if self._own_bus is not None:
                self._own_bus.close()
            if self._engine is not None:
                self._engine.dispose()
        report.record_metrics()
        if report.status == "blocked":
            log.error(
                "source %s is BLOCKED (%s): backing off until %s; check the site by hand",
                self.source.id,
                report.blocked,
                report.next_due_at,
            )
        return report


def run_crawl(
    settings: Settings,
    source: Source,
    *,
    dry_run: bool = False,
    out: IO[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> CrawlReport:
    """One crawl in this process, reactor included (so: once per process)."""
    crawl = Crawl(settings, source, dry_run=dry_run, out=out, overrides=overrides)
    try:
        ctx = crawl.open()
    except Exception as exc:  # noqa: BLE001 - database or bus away: a failed crawl
        crawl.report.error("setup", f"{type(exc).__name__}: {exc}", logging.ERROR)
        return crawl.close()
    try:
        process = CrawlerProcess(crawl.scrapy_settings(), install_root_handler=False)
        process.crawl(crawl.spider_class, ctx=ctx)
        process.start()
    except Exception as exc:  # noqa: BLE001 - report the crawl as failed, never crash
        crawl.report.error("crawl_failed", f"{type(exc).__name__}: {exc}", logging.ERROR)
    return crawl.close()


def main(argv: list[str] | None = None) -> int:
    """The `crawler` stage's child: crawl one source, write the report as JSON."""
    parser = argparse.ArgumentParser(description="crawl one source once")
    parser.add_argument("source_id")
    parser.add_argument("--report", type=Path, help="write the crawl report (JSON) here")
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )
    source = load_sources(settings).get(args.source_id)
    report = run_crawl(settings, source)
    if args.report:
        args.report.write_text(report.to_json(), encoding="utf-8")
    log.info("%s", report.summary())
    return 0 if report.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
