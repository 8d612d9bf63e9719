"""Scrapy settings: every crawl default lives here, in one place.

A source in `sources.yaml` may override the politeness knobs (robots, user agent, proxy,
delay, concurrency, timeout, size limit); anything it leaves out comes from here. The
values suit government portals and forums that are small, slow and easily upset.
"""

from __future__ import annotations

BOT_NAME = "yuqing"
USER_AGENT = "Mozilla/5.0 (compatible; yuqing/0.1; public-opinion monitoring of a district)"
ROBOTSTXT_OBEY = True

# Politeness: AutoThrottle adapts the delay to the server's latency; never more than two
# requests in flight to one domain.
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 0.5
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# Robustness: a slow or huge page must not stall or swamp a crawl.
DOWNLOAD_TIMEOUT = 20
DOWNLOAD_MAXSIZE = 5 * 1024 * 1024
DOWNLOAD_WARNSIZE = 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
RETRY_BACKOFF_BASE = 2.0  # seconds before the first retry, doubled for each further one
RETRY_BACKOFF_MAX = 60.0
REDIRECT_MAX_TIMES = 5
CLOSESPIDER_TIMEOUT = 600  # one crawl of one source takes at most ten minutes

COOKIES_ENABLED = True
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
# Keep the process's own logging set-up (`yuqing` configures the root logger).
LOG_ENABLED = False

DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawlers.middlewares.retry.BackoffRetryMiddleware": 550,
    "crawlers.middlewares.blocked.BlockedSourceMiddleware": 580,
    "crawlers.middlewares.encoding.EncodingMiddleware": 585,
    "crawlers.middlewares.conditional.ConditionalRequestMiddleware": 590,
}
ITEM_PIPELINES = {
    "crawlers.pipelines.prepare.PreparePipeline": 100,
    "crawlers.pipelines.dedup.DedupPipeline": 200,
    "crawlers.pipelines.publish.PublishPipeline": 300,
}

# --- yuqing's own crawl defaults (not Scrapy settings) -------------------------------------

#: How often a source is crawled unless it says otherwise.
DEFAULT_INTERVAL = "30m"
#: List pages (or API pages) followed per crawl unless the source says otherwise.
DEFAULT_MAX_PAGES = 5
#: A source that used to yield at least this many entries per crawl and now yields none
#: is treated as blocked (layout change or soft block), not as quiet.
ZERO_ITEMS_MIN_TYPICAL = 5
#: Backoff of a blocked source: its interval doubled per consecutive block, capped.
BLOCKED_BACKOFF_MAX_SECONDS = 24 * 3600
#: Posts buffered before the bus is flushed and the batch marked seen.
PUBLISH_BATCH = 200
#: Largest original kept as a post's snapshot (bytes before compression).
SNAPSHOT_MAX_BYTES = 256 * 1024
#: Crawls the `crawler` stage runs at the same time (each in its own process).
STAGE_PARALLEL_CRAWLS = 2
