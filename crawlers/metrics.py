"""Per-source crawl metrics (README "Crawling"), updated from each crawl's report.

The `crawler` stage runs every crawl in a child process, so counters are updated in the
stage from the report the child hands back: one code path for `yuqing crawl` and the
stage, and nothing lost when a child exits.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CRAWL_ITEMS = Counter(
    "yuqing_crawl_items_total", "Posts a crawl published to posts.raw.", ["source"]
)
CRAWL_PAGES = Counter("yuqing_crawl_pages_total", "Pages and API responses fetched.", ["source"])
CRAWL_ERRORS = Counter(
    "yuqing_crawl_errors_total",
    "Crawl problems by reason (http_404, timeout, too_large, bad_date, blocked, …).",
    ["source", "reason"],
)
LAST_SUCCESS = Gauge(
    "yuqing_source_last_success_timestamp_seconds",
    "Unix time of the source's last successful crawl.",
    ["source"],
)
BLOCKED = Gauge("yuqing_source_blocked", "1 while the source is marked blocked.", ["source"])
