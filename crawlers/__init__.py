"""Crawlers: a Scrapy project that turns every source in `config/sources.yaml` into posts
on `posts.raw`, incrementally, politely and loudly when a source breaks.

By role: `settings` (Scrapy settings: every crawl default), `config` (the sources file
schema), `spiders/` (one spider per source kind), `middlewares/` (blocked-source
detection, encodings, conditional requests, retry backoff), `pipelines/` (prepare,
deduplicate, publish), `dates` (Chinese date formats), `extract` (selectors, JSON
paths), `context` (what one crawl carries), `state` (crawl state in the database),
`report` and `metrics`, `run` (one crawl), `stage` (the `crawler` stage and
`yuqing crawl`), `sample_site/` (a local site for the demo and the benchmark).
"""
