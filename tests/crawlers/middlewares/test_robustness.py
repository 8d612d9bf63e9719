"""Failures a crawl meets: 404/500, redirect loops, slow pages and timeouts, oversized
pages, robots.txt, blocked sources. Each is counted and logged; none crashes the crawl
or makes it publish twice."""

from __future__ import annotations

import pytest

from tests.crawlers.conftest import CrawlFn, Site, read_posts

LIST = '<ul class="l">{}</ul>'


def html_source(site: Site, **extra: object) -> dict[str, object]:
    return {
        "id": "portal",
        "kind": "html",
        "start_urls": [site.url("/list.html")],
        "list": {"item": "ul.l li"},
        "detail": {"title": "h1", "body": "div.c"},
        **extra,
    }


def page(site: Site, path: str, title: str, **kw: object) -> None:
    site.add(path, f"<h1>{title}</h1><div class='c'>{title}的正文内容。</div>", **kw)


def entries(*paths: str) -> str:
    return LIST.format("".join(f'<li><a href="{p}">{p}</a></li>' for p in paths))


@pytest.mark.slow
def test_errors_are_counted_and_the_rest_is_published(site: Site, crawl: CrawlFn, bus) -> None:
    site.add(
        "/list.html",
        entries(
            "/ok.html",
            "/missing.html",
            "/broken.html",
            "/loop1.html",
            "/slow.html",
            "/huge.html",
            "/late.html",
        ),
    )
    page(site, "/ok.html", "正常页面")
    page(site, "/late.html", "稍慢页面", delay=0.3)
    site.add("/broken.html", "oops", status=500)
    site.redirect("/loop1.html", "/loop2.html")
    site.redirect("/loop2.html", "/loop1.html")
    page(site, "/slow.html", "超时页面", delay=3)
    site.add("/huge.html", "<h1>大</h1><div class='c'>" + "大" * 200_000 + "</div>")
    report = crawl(html_source(site), DOWNLOAD_TIMEOUT=1, DOWNLOAD_MAXSIZE=100_000)
    assert sorted(p.title for p in read_posts(bus)) == ["正常页面", "稍慢页面"]
    assert report.status == "ok" and report.published == 2
    for reason in ("http_404", "http_500", "redirect_loop", "timeout", "too_large"):
        assert report.errors[reason] == 1, (reason, report.errors)
    assert site.hits("/broken.html") == 2  # retried once, with backoff, then counted

    again = crawl(html_source(site), DOWNLOAD_TIMEOUT=1, DOWNLOAD_MAXSIZE=100_000)
    assert again.published == 0 and read_posts(bus) == []


def test_robots_txt_obeyed_unless_the_source_says_otherwise(
    site: Site, crawl: CrawlFn, bus
) -> None:
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.add("/list.html", entries("/private/a.html", "/pub.html"))
    page(site, "/private/a.html", "内部页面")
    page(site, "/pub.html", "公开页面")
    report = crawl(html_source(site))
    assert [p.title for p in read_posts(bus)] == ["公开页面"] and report.errors["robots"] == 1
    crawl(html_source(site, robots=False))
    assert [p.title for p in read_posts(bus)] == ["内部页面"]


@pytest.mark.parametrize("kind", ["http_403", "captcha_redirect", "block_page"])
def test_blocked_source_is_marked_and_backs_off(
    site: Site, crawl: CrawlFn, bus, yq, kind: str
) -> None:
    from crawlers.state import source_rows
    from pipeline.storage.db import make_engine, session_factory

    site.add("/list.html", entries("/a.html", "/b.html"))
    page(site, "/a.html", "第一篇")
    if kind == "http_403":
        site.add("/b.html", "Forbidden", status=403)
    elif kind == "captcha_redirect":
        site.redirect("/b.html", "/verify/captcha?from=b")
        site.add("/verify/captcha?from=b", "<p>请完成验证</p>")
    else:
        site.add("/b.html", "<html><body>访问过于频繁，请输入验证码</body></html>")
    report = crawl(html_source(site, concurrency=1))
    assert report.status == "blocked" and report.errors["blocked"] == 1
    engine = make_engine(yq.resolved_database_url)
    row = source_rows(session_factory(engine))["portal"]
    engine.dispose()
    assert row["status"] == "blocked" and row["blocked_until"] > row["last_finished_at"]
    assert row["next_due_at"] == row["blocked_until"]
    assert len(read_posts(bus)) <= 1  # what came before the block is published once


def test_zero_entries_where_there_used_to_be_many_is_a_block(
    site: Site, crawl: CrawlFn, bus
) -> None:
    paths = [f"/p{i}.html" for i in range(6)]
    site.add("/list.html", entries(*paths))
    for p in paths:
        page(site, p, p)
    for _ in range(3):
        assert crawl(html_source(site)).status == "ok"
    site.add("/list.html", "<html><body><div>页面改版了</div></body></html>")
    report = crawl(html_source(site))
    assert report.status == "blocked" and report.blocked.startswith("zero_items")
