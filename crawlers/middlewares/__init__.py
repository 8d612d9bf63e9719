"""Downloader middlewares: blocked-source detection, encodings, conditional requests
(ETag / Last-Modified) and retry backoff. Each reads the crawl's context from the
spider (`spider.ctx`)."""
