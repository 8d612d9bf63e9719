"""The sample site: every source kind on one local HTTP server.

/robots.txt                          allows everything but /private/
/news/rss.xml, /news/rdf.xml, /news/atom.xml   RSS 2.0, RSS 1.0, Atom (UTF-8)
/news/a/N.html                       the feed's article pages
/gov/list_P.html, /gov/art/N.html    a government portal (UTF-8)
/bbs/forum.php?mod=forumdisplay|viewthread   a Discuz! X forum (GBK)
/api/container/getIndex?containerid=…&since_id=…   a Weibo-style timeline (JSON)
/wz/list?page=P, /wz/N.html          a message board with official replies (GB18030)
"""

from __future__ import annotations

import html
import json
import threading
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from crawlers.sample_site.content import INITIAL_POSTS, Channel, SamplePost

LOCAL = ZoneInfo("Asia/Shanghai")
PER_PAGE = 10
POSTS_PER_THREAD_PAGE = 10
Page = tuple[int, str, bytes]  # status, content type, body


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def local(at: datetime, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return at.astimezone(LOCAL).strftime(fmt)


def _html(body: str, title: str, charset: str = "utf-8") -> bytes:
    page = (
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Type" '
        f'content="text/html; charset={charset}"><title>{esc(title)}</title></head>'
        f"<body>{body}</body></html>"
    )
    return page.encode(charset, errors="xmlcharrefreplace")


def next_link(more: bool, href: str, css: str = "next") -> str:
    """The "下一页" link of a paged list, when there is a next page."""
    return f'<a class="{css}" href="{href}">下一页</a>' if more else ""


def _paras(post: SamplePost) -> str:
    return "".join(f"<p>{esc(p)}</p>" for p in post.paragraphs)


class SampleSite:
    """The site's pages; `serve` puts them on a port."""

    def __init__(self, new_every: float = 60.0, initial: int = INITIAL_POSTS):
        self.channels = {
            name: Channel(name, seed, new_every=new_every, initial=initial)
            for seed, name in enumerate(("news", "gov", "bbs", "weibo", "wz"), start=1)
        }

    # --- feeds ------------------------------------------------------------------------

    def feed(self, kind: str, base: str) -> Page:
        posts = self.channels["news"].newest(20)
        link = f"{base}/news/a/"
        if kind == "rss":
            items = "".join(
                f"<item><title>{esc(p.title)}</title><link>{link}{p.n}.html</link>"
                f"<description>{esc(_paras(p))}</description>"
                f"<pubDate>{format_datetime(p.published)}</pubDate>"
                f"<dc:creator>{esc(p.author)}</dc:creator><guid>{link}{p.n}.html</guid></item>"
                for p in posts
            )
            body = (
                '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
                'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>区融媒体中心</title>'
                f"<link>{base}/news/</link>{items}</channel></rss>"
            )
            return 200, "application/rss+xml; charset=utf-8", body.encode()
        if kind == "rdf":
            items = "".join(
                f'<item rdf:about="{link}{p.n}.html"><title>{esc(p.title)}</title>'
                f"<link>{link}{p.n}.html</link><description>{esc(p.body)}</description>"
                f"<dc:date>{p.published.isoformat()}</dc:date></item>"
                for p in posts
            )
            body = (
                '<?xml version="1.0" encoding="utf-8"?><rdf:RDF '
                'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
                'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                f'<channel rdf:about="{base}/news/"><title>区融媒体中心</title></channel>'
                f"{items}</rdf:RDF>"
            )
            return 200, "application/rdf+xml; charset=utf-8", body.encode()
        entries = "".join(
            f'<entry><title>{esc(p.title)}</title><link href="/news/a/{p.n}.html"/>'
            f"<id>tag:sample,{p.n}</id><updated>{p.published.isoformat()}</updated>"
            f'<summary type="html">{esc(_paras(p))}</summary>'
            f"<author><name>{esc(p.author)}</name></author></entry>"
            for p in posts
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>区政府门户网站</title><id>{base}/</id>{entries}</feed>"
        )
        return 200, "application/atom+xml; charset=utf-8", body.encode()

    def article(self, channel: str, n: int) -> Page:
        ch = self.channels[channel]
        if not 0 <= n < ch.count():
            return 404, "text/html", b"not found"
        p = ch.post(n)
        body = (
            f'<div class="main"><h1>{esc(p.title)}</h1><div class="info">发布时间：'
            f"{local(p.published, '%Y年%m月%d日 %H:%M')} 来源：区政府办公室</div>"
            f'<div class="content">{_paras(p)}</div></div>'
        )
        return 200, "text/html; charset=utf-8", _html(body, p.title)

    # --- government portal ------------------------------------------------------------

    def gov_list(self, page: int) -> Page:
        ch = self.channels["gov"]
        posts = ch.newest(PER_PAGE, (page - 1) * PER_PAGE)
        if not posts:
            return 404, "text/html", b"not found"
        rows = "".join(
            f'<li><a href="art/{p.n}.html" title="{esc(p.title)}">{esc(p.title)}</a>'
            f"<span>{local(p.published, '%Y-%m-%d')}</span></li>"
            for p in posts
        )
        nxt = next_link(page * PER_PAGE < ch.count(), f"list_{page + 1}.html")
        body = f'<ul class="news-list">{rows}</ul><div class="pages">{nxt}</div>'
        return 200, "text/html; charset=utf-8", _html(body, "通知公告")

    # --- Discuz! forum (GBK) ------------------------------------------------------------

    def forum(self, page: int) -> Page:
        ch = self.channels["bbs"]
        threads = ch.newest(PER_PAGE, (page - 1) * PER_PAGE)
        rows = "".join(
            f'<tbody id="normalthread_{p.n}"><tr><th><a href="forum.php?mod=viewthread&amp;'
            f'tid={p.n}" class="s xst">{esc(p.title)}</a></th><td class="by"><cite>'
            f"<a>{esc(p.author)}</a></cite><em><span>{local(p.published, '%Y-%m-%d')}</span>"
            f'</em></td><td class="num"><a class="xi2">{len(p.replies)}</a>'
            f"<em>{37 * (p.n + 3) % 997}</em></td></tr></tbody>"
            for p in threads
        )
        more = page * PER_PAGE < ch.count()
        nxt = next_link(more, f"forum.php?mod=forumdisplay&amp;fid=2&amp;page={page + 1}", "nxt")
        body = f'<table id="threadlisttableid">{rows}</table><div class="pg">{nxt}</div>'
        return 200, "text/html; charset=gbk", _html(body, "百姓杂谈 - 社区论坛", "gbk")

    def thread(self, tid: int, page: int) -> Page:
        ch = self.channels["bbs"]
        if not 0 <= tid < ch.count():
            return 404, "text/html", b"not found"
        p = ch.post(tid)
        floors = [(p.author, p.body, p.published), *p.replies]
        start = (page - 1) * POSTS_PER_THREAD_PAGE
        now = datetime.now(UTC)
        posts = []
        for i, (author, text, at) in enumerate(floors[start : start + POSTS_PER_THREAD_PAGE]):
            floor = start + i + 1
            label = {1: "楼主", 2: "沙发", 3: "板凳", 4: "地板"}.get(floor, f"{floor}<sup>#</sup>")
            hours = int((now - at).total_seconds() // 3600)
            when = (
                f'<span title="{local(at)}">{hours} 小时前</span>' if 0 < hours < 24 else local(at)
            )
            pid = tid * 100 + floor
            posts.append(
                f'<div id="post_{pid}"><table id="pid{pid}"><tr><td class="pls"><div '
                f'class="authi"><a class="xw1" href="space-uid-{pid}.html">{esc(author)}</a>'
                f'</div></td><td class="plc"><div class="authi"><em id="authorposton{pid}">'
                f'发表于 {when}</em></div><a id="postnum{pid}"><em>{label}</em></a>'
                f'<table><tr><td class="t_f" id="postmessage_{pid}">{esc(text)}</td></tr>'
                "</table></td></tr></table></div>"
            )
        more = start + POSTS_PER_THREAD_PAGE < len(floors)
        nxt = next_link(more, f"forum.php?mod=viewthread&amp;tid={tid}&amp;page={page + 1}", "nxt")
        body = (
            f'<h1><span id="thread_subject">{esc(p.title)}</span></h1>'
            f'<div id="postlist">{"".join(posts)}</div><div class="pg">{nxt}</div>'
        )
        return 200, "text/html; charset=gbk", _html(body, p.title, "gbk")

    # --- Weibo-style timeline -----------------------------------------------------------

    def timeline(self, since_id: int | None) -> Page:
        ch = self.channels["weibo"]
        top = ch.count() - 1 if since_id is None else since_id
        posts = [ch.post(n) for n in range(top, max(-1, top - PER_PAGE), -1)]
        cards: list[dict[str, Any]] = [{"card_type": 11, "card_group": []}]
        for p in posts:
            created = p.published.astimezone(LOCAL).strftime("%a %b %d %H:%M:%S +0800 %Y")
            cards.append({"card_type": 9, "mblog": {
                "id": str(4_900_000_000 + p.n), "mid": str(4_900_000_000 + p.n),
                "created_at": created, "text": "<br />".join(esc(x) for x in p.paragraphs),
                "user": {"id": 1000 + p.n % 7, "screen_name": p.author},
                "reposts_count": p.n % 13, "comments_count": len(p.replies),
                "attitudes_count": p.n * 7 % 101,
            }})  # fmt: skip
        nxt = top - PER_PAGE if top - PER_PAGE >= 0 else None
        info: dict[str, Any] = {"containerid": "1076031234567890"}
        if nxt is not None:
            info["since_id"] = nxt
        data = {"ok": 1, "data": {"cardlistInfo": info, "cards": cards}}
        return 200, "application/json; charset=utf-8", json.dumps(data, ensure_ascii=False).encode()

    # --- message board (GB18030) --------------------------------------------------------

    def board_list(self, page: int) -> Page:
        ch = self.channels["wz"]
        posts = ch.newest(PER_PAGE, (page - 1) * PER_PAGE)
        rows = "".join(
            f'<tr class="msg-row"><td><a href="{p.n}.html">{esc(p.title)}</a></td>'
            f"<td>{'已回复' if p.official else '办理中'}</td>"
            f"<td>{local(p.published, '%Y-%m-%d')}</td></tr>"
            for p in posts
        )
        nxt = next_link(page * PER_PAGE < ch.count(), f"list?page={page + 1}")
        body = f'<table class="msg-list">{rows}</table><div class="pager">{nxt}</div>'
        return 200, "text/html; charset=gb18030", _html(body, "网民留言", "gb18030")

    def board_message(self, n: int) -> Page:
        ch = self.channels["wz"]
        if not 0 <= n < ch.count():
            return 404, "text/html", b"not found"
        p = ch.post(n)
        reply = ""
        if p.official:
            org, text, at = p.official
            reply = (
                f'<div class="reply"><span class="org">{esc(org)}</span>'
                f'<span class="rtime">回复时间：{local(at, "%Y-%m-%d %H:%M")}</span>'
                f'<div class="rtext">{esc(text)}</div></div>'
            )
        body = (
            f'<div class="msg"><h2>{esc(p.title)}</h2><span class="time">留言时间：'
            f'{local(p.published, "%Y-%m-%d %H:%M")}</span><span class="who">{esc(p.author)}'
            f'</span><div class="body">{_paras(p)}</div></div>{reply}'
        )
        return 200, "text/html; charset=gb18030", _html(body, p.title, "gb18030")

    # --- routing ----------------------------------------------------------------------

    def page(self, target: str, base: str) -> Page:
        parts = urlsplit(target)
        path, q = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}

        def num(value: str | None, default: int = 1) -> int:
            return int(value) if value and value.isdigit() else default

        segments = path.strip("/").split("/")
        last = segments[-1]
        stem = last.split(".")[0]
        if path == "/robots.txt":
            return 200, "text/plain", b"User-agent: *\nDisallow: /private/\n"
        if path in ("/news/rss.xml", "/news/rdf.xml", "/news/atom.xml"):
            return self.feed(stem, base)
        if path.startswith("/news/a/") and stem.isdigit():
            return self.article("news", int(stem))
        if path.startswith("/gov/list_"):
            return self.gov_list(num(stem.removeprefix("list_")))
        if path.startswith("/gov/art/") and stem.isdigit():
            return self.article("gov", int(stem))
        if path == "/bbs/forum.php" and q.get("mod") == "forumdisplay":
            return self.forum(num(q.get("page")))
        if path == "/bbs/forum.php" and q.get("mod") == "viewthread":
            return self.thread(num(q.get("tid"), -1), num(q.get("page")))
        if path == "/api/container/getIndex":
            since = q.get("since_id")
            return self.timeline(int(since) if since and since.isdigit() else None)
        if path == "/wz/list":
            return self.board_list(num(q.get("page")))
        if path.startswith("/wz/") and stem.isdigit():
            return self.board_message(int(stem))
        return 404, "text/html", b"not found"


def serve(site: SampleSite, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serve `site` from a background thread; the server's address says the port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host_header = self.headers.get("Host") or f"{host}:{server.server_address[1]}"
            try:
                status, ctype, body = site.page(self.path, f"http://{host_header}")
            except Exception:  # noqa: BLE001 - a sample page bug must not kill the server
                status, ctype, body = 500, "text/plain", b"internal error"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="sample-site").start()
    return server
