"""Crawl throughput: every sample-site source into the bus, both transports, one run.

    python benchmarks/crawl.py [--posts 300] [--kafka HOST:PORT]

Starts the sample site (`crawlers.sample_site`, every source kind, GBK forum pages
among them) with `--posts` posts per channel, and the Tansu Kafka-protocol broker unless
`--kafka` names one. For each transport a child process crawls all six sample sources
at once in one Scrapy reactor, from an empty crawl state, and reports pages/s and
posts/s (published, flushed and marked seen). Politeness is off (no AutoThrottle or
delay, 8 requests per domain): this measures the crawler, not the site's patience.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The repository first: this folder's pipeline.py would shadow the pipeline package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from crawlers.sample_site import SampleSite, sample_sources, serve

FAST = {
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
}


def child(sources_file: Path) -> None:
    """Crawl every source of `sources_file` concurrently; print the totals as JSON."""
    from scrapy.crawler import CrawlerProcess

    from crawlers.config import load_sources
    from crawlers.run import Crawl
    from pipeline.settings import load_settings
    from pipeline.storage.db import upgrade

    settings = load_settings(sources_file=str(sources_file))
    upgrade(settings.resolved_database_url)
    crawls = [Crawl(settings, s, overrides=FAST) for s in load_sources(settings).sources]
    process = CrawlerProcess(crawls[0].scrapy_settings(), install_root_handler=False)
    started = time.perf_counter()
    for crawl in crawls:
        process.crawl(crawl.spider_class, ctx=crawl.open())
    process.start()
    seconds = time.perf_counter() - started
    reports = [crawl.close() for crawl in crawls]
    print(json.dumps({
        "seconds": seconds,
        "pages": sum(r.pages for r in reports),
        "posts": sum(r.published for r in reports),
        "errors": sum(sum(r.errors.values()) for r in reports),
    }))  # fmt: skip


def measure(transport: str, sources_file: Path, kafka: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YUQING_")}
        env.update(
            YUQING_DATA_DIR=data_dir,
            YUQING_BUS=transport,
            YUQING_LOG_LEVEL="WARNING",
            YUQING_METRICS_PORT="0",
            PYTHONPATH=str(Path(__file__).parents[1]),
        )
        if kafka:
            env["YUQING_KAFKA_BOOTSTRAP_SERVERS"] = kafka
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(sources_file)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=300, help="posts per channel")
    parser.add_argument("--kafka", help="bootstrap address; default: start Tansu")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    from pipeline.bus.tansu import tansu_broker

    server = serve(SampleSite(initial=args.posts), port=0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    data = yaml.safe_load(sample_sources(base))
    for source in data["sources"]:
        source["max_pages"] = args.posts  # read everything
    with tempfile.TemporaryDirectory() as tmp:
        sources_file = Path(tmp) / "sources.yaml"
        sources_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        print(f"sample site {base}: {args.posts} posts per channel, 6 sources")
        print(
            f"{'transport':<10} {'pages':>6} {'posts':>6} {'seconds':>8} {'pages/s':>8} "
            f"{'posts/s':>8}"
        )
        results = {"local": measure("local", sources_file, None)}
        if args.kafka:
            results["kafka"] = measure("kafka", sources_file, args.kafka)
        else:
            with tansu_broker() as address:
                results["kafka"] = measure("kafka", sources_file, address)
        for name, r in results.items():
            print(
                f"{name:<10} {r['pages']:>6} {r['posts']:>6} {r['seconds']:>8.1f} "
                f"{r['pages'] / r['seconds']:>8.1f} {r['posts'] / r['seconds']:>8.1f}"
                + (f"  ({r['errors']} errors)" if r["errors"] else "")
            )
    server.shutdown()


if __name__ == "__main__":
    main()
