"""`discuz` sources: forumdisplay → viewthread, floors, GBK and GB18030, new replies."""

from __future__ import annotations

from tests.crawlers.conftest import CrawlFn, Site, read_posts

FORUM = """<html><head><meta http-equiv="Content-Type" content="text/html; charset={cs}" /></head>
<body><table id="threadlisttableid">{rows}</table>
<div class="pg">{nxt}</div></body></html>"""
ROW = """<tbody id="normalthread_{tid}"><tr><th><a href="forum.php?mod=viewthread&amp;tid={tid}"
 class="s xst">{title}</a></th><td class="by"><cite><a>{author}</a></cite></td>
<td class="num"><a class="xi2">{replies}</a><em>{views}</em></td></tr></tbody>"""
THREAD = """<html><head><meta charset="{cs}"></head><body>
<span id="thread_subject">{title}</span><div id="postlist">{posts}</div>
<div class="pg">{nxt}</div></body></html>"""
POST = """<div id="post_{pid}"><table id="pid{pid}"><tr><td class="pls"><div class="authi">
<a class="xw1" href="space-uid-1.html">{author}</a></div></td><td class="plc">
<div class="authi"><em id="authorposton{pid}">发表于 {when}</em></div>
<a id="postnum{pid}"><em>{floor}</em></a>
<td class="t_f" id="postmessage_{pid}">{body}</td></td></tr></table></div>"""


def forum(site: Site, rows: list[dict[str, object]], cs: str = "gbk") -> None:
    body = FORUM.format(cs=cs, rows="".join(ROW.format(**r) for r in rows), nxt="")
    site.add(
        "/bbs/forum.php?mod=forumdisplay&fid=2&page=1", body, encoding=cs, content_type="text/html"
    )


def thread(
    site: Site,
    tid: int,
    title: str,
    posts: list[tuple],
    page: int = 1,
    nxt: str = "",
    cs: str = "gbk",
) -> None:
    html = THREAD.format(
        cs=cs,
        title=title,
        nxt=nxt,
        posts="".join(
            POST.format(pid=pid, author=a, when=w, floor=f, body=b) for pid, a, w, f, b in posts
        ),
    )
    path = f"/bbs/forum.php?mod=viewthread&tid={tid}" + (f"&page={page}" if page > 1 else "")
    site.add(path, html, encoding=cs, content_type="text/html")


SOURCE = {"id": "bbs", "kind": "discuz", "forums": [2], "thread_pages": 2}


def test_threads_floors_and_new_replies(site: Site, crawl: CrawlFn, bus) -> None:
    src = {**SOURCE, "base_url": site.url("/bbs/")}
    forum(
        site,
        [
            {
                "tid": 7,
                "title": "小区门口工地夜间施工扰民",
                "author": "居民甲",
                "replies": 2,
                "views": 88,
            }
        ],
    )
    thread(
        site,
        7,
        "小区门口工地夜间施工扰民",
        [
            (70, "居民甲", "2018-5-26 11:27:05", "楼主", "每天晚上十一点还在施工，噪音很大。"),
            (
                71,
                "居民乙",
                '<span title="2018-5-26 12:00:00">3 小时前</span>',
                "沙发",
                "同感，睡不好。",
            ),
        ],
        nxt='<a class="nxt" href="forum.php?mod=viewthread&amp;tid=7&amp;page=2">下一页</a>',
    )
    thread(
        site,
        7,
        "小区门口工地夜间施工扰民",
        [(72, "居民丙", "2018-5-26 13:00", "3#", "已经打了12345。")],
        page=2,
    )
    report = crawl(src)
    posts = {p.floor: p for p in read_posts(bus)}
    assert report.published == 3 and set(posts) == {1, 2, 3}, report.summary()
    op = posts[1]
    assert op.channel == "discuz" and op.title == "小区门口工地夜间施工扰民"
    assert op.metrics.views == 88 and op.metrics.replies == 2
    assert op.text == "每天晚上十一点还在施工，噪音很大。"
    assert op.published_at.isoformat() == "2018-05-26T03:27:05+00:00"
    assert posts[2].published_at.isoformat() == "2018-05-26T04:00:00+00:00"
    assert posts[2].parent_id == posts[3].parent_id == op.id
    assert posts[2].author == "居**"

    assert crawl(src).published == 0  # reply count unchanged: thread not even fetched
    forum(
        site,
        [
            {
                "tid": 7,
                "title": "小区门口工地夜间施工扰民",
                "author": "居民甲",
                "replies": 3,
                "views": 120,
            }
        ],
    )
    thread(
        site,
        7,
        "小区门口工地夜间施工扰民",
        [
            (72, "居民丙", "2018-5-26 13:00", "3#", "已经打了12345。"),
            (73, "居民丁", "2018-5-27 08:00", "4#", "今天早上又开始了。"),
        ],
        page=2,
    )
    third = crawl(src)
    [new] = read_posts(bus)
    assert third.published == 1 and new.floor == 4 and new.text == "今天早上又开始了。"


def test_gb18030_page_with_rare_characters(site: Site, crawl: CrawlFn, bus) -> None:
    forum(
        site,
        [{"tid": 9, "title": "䶮字测试", "author": "甲", "replies": 0, "views": 1}],
        cs="gb18030",
    )
    thread(
        site,
        9,
        "䶮字测试",
        [(90, "甲", "2018-05-26", "楼主", "GB18030 才有的字：䶮、𠀀。")],
        cs="gb18030",
    )
    crawl({**SOURCE, "base_url": site.url("/bbs/")})
    [post] = read_posts(bus)
    assert "䶮" in post.text and "𠀀" in post.text
