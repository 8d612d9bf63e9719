"""The outcome of one crawl: counts, errors by reason, health. JSON for the stage."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from crawlers import metrics

log = logging.getLogger("crawlers")


@dataclass
class CrawlReport:
    """Counted as the crawl goes; `record_metrics` publishes it to Prometheus once."""

    source: str
    pages: int = 0
    not_modified: int = 0
    #: Entries found on list pages / feeds / APIs, new or not (health: zero where many).
    entries: int = 0
    published: int = 0
    duplicates: int = 0
    dropped: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    blocked: str | None = None
    status: str = "running"
    next_due_at: str | None = None
    finished_at: str | None = None

    def error(self, reason: str, detail: str = "", level: int = logging.WARNING) -> None:
        """Count a problem and log it with the source and the reason (never raises)."""
        self.errors[reason] += 1
        log.log(level, "source %s: %s%s", self.source, reason, f": {detail}" if detail else "")

    def block(self, reason: str, detail: str = "") -> None:
        if self.blocked is None:
            self.blocked = reason
            self.error("blocked", f"{reason} {detail}".strip(), logging.ERROR)

    @property
    def fetched(self) -> bool:
        return self.pages > 0 or self.not_modified > 0

    def to_json(self) -> str:
        data = asdict(self)
        data["errors"] = dict(self.errors)
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> CrawlReport:
        data: dict[str, Any] = json.loads(raw)
        data["errors"] = Counter(data.get("errors") or {})
        return cls(**data)

    def summary(self) -> str:
        errors = ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items())) or "none"
        return (
            f"source {self.source}: {self.status}; {self.pages} pages "
            f"({self.not_modified} not modified), {self.entries} entries, "
            f"{self.published} published, {self.duplicates} already seen or duplicate, "
            f"{self.dropped} dropped; errors: {errors}"
        )

    def record_metrics(self) -> None:
        metrics.CRAWL_ITEMS.labels(self.source).inc(self.published)
        metrics.CRAWL_PAGES.labels(self.source).inc(self.pages)
        for reason, n in self.errors.items():
            metrics.CRAWL_ERRORS.labels(self.source, reason).inc(n)
        metrics.BLOCKED.labels(self.source).set(1 if self.status == "blocked" else 0)
        if self.status == "ok" and self.finished_at:
            at = datetime.fromisoformat(self.finished_at)
            metrics.LAST_SUCCESS.labels(self.source).set(at.timestamp())
