"""`feed` sources: RSS 2.0, RSS 1.0 and Atom; conditional requests; broken XML."""

from __future__ import annotations

from tests.crawlers.conftest import CrawlFn, Site, read_posts

RSS2 = """<?xml version="1.0" encoding="gb2312"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>区新闻</title>
<item><title>区委召开全会</title><link>http://news.example.cn/a/1.html?utm_source=rss</link>
<description><![CDATA[<p>会议审议通过了<b>决定</b>。</p>]]></description>
<pubDate>Sat, 26 May 2018 03:27:05 GMT</pubDate><dc:creator>张记者</dc:creator></item>
<item><title>没有日期的消息</title><link>http://news.example.cn/a/2.html</link>
<content:encoded><![CDATA[全文在这里。]]></content:encoded><pubDate>不详</pubDate></item>
</channel></rss>"""

RSS1 = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><channel rdf:about="http://x.cn/"><title>t</title></channel>
<item rdf:about="http://x.cn/n/1"><title>RDF 条目</title><link>http://x.cn/n/1</link>
<description>RSS 1.0 的正文</description><dc:date>2018-05-26T11:27:05+08:00</dc:date></item>
</rdf:RDF>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>门户</title>
<entry><title>Atom 条目</title><link rel="alternate" href="/portal/e1.html"/>
<id>tag:portal,2018:1</id><updated>2018-05-26T03:27:05Z</updated>
<summary type="html">&lt;p&gt;摘要 &amp; 正文&lt;/p&gt;</summary>
<author><name>编辑部</name></author></entry>
<entry><title>坏条目<link href="/portal/e2.html"/><summary>未闭合</summary></entry>
</feed>"""


def feed_source(*urls: str) -> dict[str, object]:
    return {"id": "news-feed", "kind": "feed", "urls": list(urls)}


def test_rss2_rss1_atom(site: Site, crawl: CrawlFn, bus) -> None:
    site.add("/rss2.xml", RSS2, encoding="gb18030", content_type="application/rss+xml")
    site.add("/rss1.xml", RSS1, content_type="application/rdf+xml")
    site.add("/atom.xml", ATOM, content_type="application/atom+xml")
    report = crawl(feed_source(site.url("/rss2.xml"), site.url("/rss1.xml"), site.url("/atom.xml")))
    posts = {p.title: p for p in read_posts(bus)}
    assert report.published == len(posts) >= 4, report.summary()
    meeting = posts["区委召开全会"]
    assert meeting.text == "会议审议通过了决定。"
    assert meeting.url == "http://news.example.cn/a/1.html"  # tracking parameter dropped
    assert meeting.published_at.isoformat() == "2018-05-26T03:27:05+00:00"
    assert meeting.author == "张**" and meeting.author_hash
    assert posts["没有日期的消息"].published_at is None and report.errors["bad_date"] == 1
    assert posts["RDF 条目"].published_at.isoformat() == "2018-05-26T03:27:05+00:00"
    atom = posts["Atom 条目"]
    assert atom.url == site.url("/portal/e1.html") and atom.text == "摘要 & 正文"


def test_conditional_request_answers_304(site: Site, crawl: CrawlFn, bus) -> None:
    site.add("/rss1.xml", RSS1, headers={"ETag": '"v1"'}, content_type="application/xml")
    assert crawl(feed_source(site.url("/rss1.xml"))).published == 1
    second = crawl(feed_source(site.url("/rss1.xml")))
    assert second.not_modified == 1 and second.published == 0 and second.status == "ok"
    assert site.requests[-1][1].get("If-None-Match") == '"v1"'
    assert len(read_posts(bus)) == 1


def test_feed_with_detail_pages(site: Site, crawl: CrawlFn, bus) -> None:
    site.add("/atom.xml", ATOM.split("<entry><title>坏条目")[0] + "</feed>")
    site.add("/portal/e1.html", "<h1>Atom 条目</h1><div id='content'>详情页的全文。</div>")
    report = crawl({**feed_source(site.url("/atom.xml")), "detail": {"body": "#content"}})
    [post] = read_posts(bus)
    assert report.published == 1 and post.text == "详情页的全文。"
    assert post.published_at is not None
