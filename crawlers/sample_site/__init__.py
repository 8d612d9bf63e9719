"""A local site with every source kind, for `yuqing demo`, the benchmark and trying the
crawlers without touching a real site: `python -m crawlers.sample_site [--port 8765]`.

`config/sources.sample.yaml` describes its sources for the default address;
`sample_sources(base)` gives the same file for another address."""

from __future__ import annotations

from pathlib import Path

from crawlers.sample_site.server import SampleSite, serve

DEFAULT_BASE = "http://127.0.0.1:8765"
SOURCES_FILE = Path(__file__).resolve().parents[2] / "config" / "sources.sample.yaml"


def sample_sources(base: str, template: Path = SOURCES_FILE) -> str:
    """`sources.sample.yaml` with the site at `base` instead of the default address."""
    return template.read_text(encoding="utf-8").replace(DEFAULT_BASE, base.rstrip("/"))


__all__ = ["DEFAULT_BASE", "SampleSite", "sample_sources", "serve"]
