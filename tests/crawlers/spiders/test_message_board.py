"""`message_board` sources: message, official reply and reply time; a reply that
arrives later publishes the message again, with the reply."""

from __future__ import annotations

from tests.crawlers.conftest import CrawlFn, Site, read_posts

LIST = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head>
<body><table class="list">{rows}</table></body></html>"""
MSG = """<html><head><meta charset="gbk"></head><body>
<div class="msg"><h2>{title}</h2><span class="time">留言时间：{when}</span>
<div class="body">{body}</div></div>{reply}</body></html>"""
REPLY = """<div class="reply"><span class="org">{org}</span>
<span class="rtime">回复时间：{when}</span><div class="rtext">{text}</div></div>"""


def board(site: Site) -> dict[str, object]:
    return {
        "id": "wz-board",
        "kind": "message_board",
        "start_urls": [site.url("/wz/list")],
        "list": {"item": "tr.row", "link": "a::attr(href)", "title": "a"},
        "detail": {
            "title": "h2",
            "body": "div.body",
            "date": "span.time",
            "reply": "div.rtext",
            "reply_time": "span.rtime",
            "reply_by": "span.org",
        },
    }


def message(site: Site, n: int, title: str, body: str, reply: str = "") -> None:
    site.add(
        f"/wz/{n}.html",
        MSG.format(title=title, when="2026-11-20 08:15", body=body, reply=reply),
        encoding="gbk",
        content_type="text/html",
    )


def test_message_and_late_official_reply(site: Site, crawl: CrawlFn, bus) -> None:
    site.add(
        "/wz/list",
        LIST.format(
            rows='<tr class="row"><td><a href="1.html">路灯不亮</a></td></tr>'
            '<tr class="row"><td><a href="2.html">噪音扰民</a></td></tr>'
        ),
        encoding="gbk",
        content_type="text/html",
    )
    message(
        site,
        1,
        "路灯不亮",
        "幸福路的路灯坏了一个月。",
        REPLY.format(org="区城管委", when="2026-11-21 16:00", text="已安排维修，三日内修复。"),
    )
    message(site, 2, "噪音扰民", "夜里施工噪音很大。")
    first = crawl(board(site))
    posts = {p.title: p for p in read_posts(bus)}
    assert first.published == 2
    lamp = posts["路灯不亮"]
    assert lamp.channel == "message_board" and lamp.reply.text == "已安排维修，三日内修复。"
    assert (
        lamp.reply.time.isoformat() == "2026-11-21T08:00:00+00:00" and lamp.reply.by == "区城管委"
    )
    assert lamp.published_at.isoformat() == "2026-11-20T00:15:00+00:00"
    assert posts["噪音扰民"].reply is None

    assert crawl(board(site)).published == 0  # the open message is re-read, unchanged
    message(
        site,
        2,
        "噪音扰民",
        "夜里施工噪音很大。",
        REPLY.format(org="区环保局", when="2026-11-22 10:00", text="已责令夜间停工。"),
    )
    third = crawl(board(site))
    [again] = read_posts(bus)
    assert third.published == 1 and again.id == posts["噪音扰民"].id
    assert again.reply.text == "已责令夜间停工。"
    assert crawl(board(site)).published == 0
    assert site.hits("/wz/1.html") == 1  # answered: never fetched again
