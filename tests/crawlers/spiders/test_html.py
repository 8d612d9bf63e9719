"""`html` sources: list → detail, pagination, links, malformed pages, missing fields,
incremental re-crawl, list-only mode, GBK without any declaration."""

from __future__ import annotations

from tests.crawlers.conftest import CrawlFn, Site, read_posts

LIST = """<html><head><title>通知公告</title></head><body>
<ul class="news">
{items}
</ul>
<div class="pages">{next}</div>
</body></html>"""

DETAIL = """<html><head><meta charset="{charset}"><title>{title}</title></head><body>
<h1>{title}</h1><div class="info">发布时间：{date} 来源：区政府办公室</div>
<div class="content"><p>{body}</p><p>联系电话：13812345678</p><script>var x=1;</script></div>
</body></html>"""


def article(
    site: Site,
    path: str,
    title: str,
    body: str,
    date: str = "2026-11-20 09:30",
    charset: str = "utf-8",
) -> None:
    page = DETAIL.format(title=title, body=body, date=date, charset=charset)
    site.add(path, page, encoding=charset, content_type=f"text/html; charset={charset}")


def source(site: Site, **extra: object) -> dict[str, object]:
    return {
        "id": "portal",
        "kind": "html",
        "start_urls": [site.url("/list_1.html")],
        "list": {"item": "ul.news li", "date": "span"},
        "next_page": "div.pages a.next::attr(href)",
        "detail": {"title": "h1", "body": "div.content", "date": "div.info"},
        **extra,
    }


def two_pages(site: Site) -> None:
    site.add(
        "/list_1.html",
        LIST.format(
            items='<li><a href="art/1.html">区里召开推进会</a><span>2026-11-20</span></li>'
            '<li><a href="//127.0.0.1:{port}/art/2.html">垃圾分类新规</a></li>'
            '<li><a href="/art/1.html#top">区里召开推进会</a></li>'.replace(
                "{port}", site.base.rsplit(":", 1)[1]
            ),
            next='<a class="next" href="list_2.html">下一页</a>',
        ),
    )
    site.add(
        "/list_2.html",
        LIST.format(
            items='<li><a href="art/3.html">老旧小区改造</a><span>2026年11月18日</span></li>',
            next="",
        ),
    )
    article(site, "/art/1.html", "区里召开推进会", "会议部署了重点项目建设工作。")
    article(site, "/art/2.html", "垃圾分类新规", "自12月起全面实行垃圾分类。", date="昨天 10:20")
    article(
        site, "/art/3.html", "老旧小区改造", "今年完成老旧小区改造十二个。", date="2026年11月18日"
    )


def test_first_crawl_then_nothing_new(site: Site, crawl: CrawlFn, bus) -> None:
    two_pages(site)
    report = crawl(source(site))
    assert report.status == "ok", report.summary()
    assert report.published == 3 and report.pages == 5
    posts = read_posts(bus)
    assert sorted(p.title for p in posts) == ["区里召开推进会", "垃圾分类新规", "老旧小区改造"]
    first = next(p for p in posts if p.title == "区里召开推进会")
    assert first.channel == "html" and first.url == site.url("/art/1.html")
    assert "[手机号]" in first.text and "13812345678" not in first.text
    assert "var x" not in first.text
    assert first.published_at.isoformat() == "2026-11-20T01:30:00+00:00"
    assert first.snapshot

    again = crawl(source(site))
    assert again.status == "ok" and again.published == 0
    assert read_posts(bus) == []
    # Only the first list page: nothing new on it, so no detail and no second page.
    assert site.hits("/art/") == 3 and site.hits("/list_2") == 1

    article(site, "/art/4.html", "新增停车位", "新增停车位三百个。")
    site.add(
        "/list_1.html",
        LIST.format(
            items='<li><a href="art/4.html">新增停车位</a></li><li><a href="art/1.html">x</a></li>',
            next='<a class="next" href="list_2.html">下一页</a>',
        ),
    )
    third = crawl(source(site))
    assert third.published == 1
    assert [p.title for p in read_posts(bus)] == ["新增停车位"]


def test_list_only_and_missing_fields(site: Site, crawl: CrawlFn, bus) -> None:
    site.add(
        "/list_1.html",
        LIST.format(
            items='<li><a href="a.html">只有标题</a><span>不是日期</span></li>'
            "<li><span>没有链接</span></li>"
            '<li><a href="javascript:void(0)">脚本链接</a></li>',
            next="",
        ),
    )
    report = crawl(source(site, list_only=True, detail=None))
    assert report.published == 1
    assert report.errors["bad_date"] == 1 and report.errors["missing_field"] == 1
    [post] = read_posts(bus)
    assert post.text == "只有标题" and post.published_at is None


def test_malformed_html_and_empty_body(site: Site, crawl: CrawlFn, bus) -> None:
    site.add("/list_1.html", "<ul class=news><li><a href=a.html>坏页面<li><a href='b.html'>空正文")
    site.add("/a.html", "<h1>坏页面</h1><div class=content><p>正文没有闭合标签<p>第二段")
    site.add("/b.html", "<h1>空正文</h1><div class=other>无</div>")
    report = crawl(source(site))
    assert report.status == "ok"
    titles = {p.title: p.text for p in read_posts(bus)}
    assert titles["坏页面"].startswith("正文没有闭合标签")
    assert titles["空正文"] == "空正文"  # the title stands in for a missing body
    assert report.errors["missing_field"] >= 1


def test_gbk_without_any_declaration(site: Site, crawl: CrawlFn, bus) -> None:
    site.add(
        "/list_1.html",
        LIST.format(items='<li><a href="g.html">街道办事处通知</a></li>', next=""),
        encoding="gbk",
        content_type="text/html",
    )
    site.add(
        "/g.html",
        "<html><body><h1>街道办事处通知</h1><div class='content'>"
        "本周六上午在社区服务中心开展义诊活动，欢迎居民参加。社区卫生服务中心的医生将为大家测量血压。"
        "</div></body></html>",
        encoding="gbk",
        content_type="text/html",
    )
    report = crawl(source(site))
    [post] = read_posts(bus)
    assert report.published == 1 and post.title == "街道办事处通知"
    assert "义诊活动" in post.text
