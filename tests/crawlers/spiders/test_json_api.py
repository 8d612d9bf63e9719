"""`json_api` sources: a Weibo-style mobile timeline with cursor paging, page paging,
credentials from the environment, bad JSON."""

from __future__ import annotations

import json

import pytest

from tests.crawlers.conftest import CrawlFn, Site, read_posts


def card(mid: int, text: str, when: str) -> dict[str, object]:
    return {
        "card_type": 9,
        "mblog": {
            "id": str(mid),
            "text": text,
            "created_at": when,
            "user": {"screen_name": "网友" + str(mid)},
            "reposts_count": 3,
            "comments_count": "1.2万",
            "attitudes_count": 7,
        },
    }


def timeline(cards: list[dict[str, object]], since_id: int | None) -> str:
    info = {"since_id": since_id} if since_id else {}
    return json.dumps(
        {"ok": 1, "data": {"cardlistInfo": info, "cards": [{"card_type": 11}, *cards]}},
        ensure_ascii=False,
    )


def weibo(site: Site) -> dict[str, object]:
    return {
        "id": "weibo-gov",
        "kind": "json_api",
        "url": site.url("/api/container/getIndex?containerid=1076031"),
        "items": "data.cards[*].mblog",
        "fields": {
            "native_id": "id",
            "text": "text",
            "author": "user.screen_name",
            "published_at": "created_at",
            "url": "https://m.weibo.cn/detail/{id}",
            "reposts": "reposts_count",
            "replies": "comments_count",
            "likes": "attitudes_count",
        },
        "paging": {
            "type": "cursor",
            "param": "since_id",
            "cursor_path": "data.cardlistInfo.since_id",
        },
        "headers_env": {"X-Token": "TEST_WEIBO_TOKEN"},
        "cookies_env": "TEST_WEIBO_COOKIE",
    }


def test_weibo_timeline_cursor_and_env_credentials(
    site: Site, crawl: CrawlFn, bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_WEIBO_TOKEN", "s3cret")
    monkeypatch.setenv("TEST_WEIBO_COOKIE", "SUB=abc; SUBP=def")
    base = "/api/container/getIndex?containerid=1076031"
    site.add(
        base,
        timeline(
            [
                card(5, '区政府回应<a href="/n/1">#停车难#</a>问题<br/>将新增车位', "3小时前"),
                card(4, "感谢环卫工人", "Sat May 26 11:27:05 +0800 2018"),
            ],
            since_id=3,
        ),
        content_type="application/json",
    )
    site.add(
        base + "&since_id=3",
        timeline([card(3, "第二页的微博", "05-20 08:00")], None),
        content_type="application/json",
    )
    report = crawl(weibo(site))
    posts = {p.native_id: p for p in read_posts(bus)}
    assert report.published == 3 and set(posts) == {"5", "4", "3"}, report.summary()
    assert posts["5"].text == "区政府回应停车难问题\n将新增车位"  # cleaned as the classifier does
    assert posts["5"].url == "https://m.weibo.cn/detail/5"
    assert posts["4"].published_at.isoformat() == "2018-05-26T03:27:05+00:00"
    assert posts["4"].metrics.replies == 12000 and posts["4"].metrics.reposts == 3
    headers = site.requests[-1][1]
    assert headers.get("X-Token") == "s3cret" and "SUB=abc" in headers.get("Cookie", "")
    assert crawl(weibo(site)).published == 0
    assert site.hits(base + "&since_id") == 1  # first page all seen: no second page


def test_page_paging_bad_json_and_missing_ids(site: Site, crawl: CrawlFn, bus) -> None:
    site.add(
        "/search?q=x&page=1",
        json.dumps(
            {
                "list": [
                    {"mid": 1, "content": "第一条"},
                    {"content": "没有编号"},
                    {"mid": 2, "content": None},
                ]
            }
        ),
        content_type="application/json",
    )
    site.add("/search?q=x&page=2", "{not json", content_type="application/json")
    report = crawl(
        {
            "id": "search",
            "kind": "json_api",
            "url": site.url("/search?q=x"),
            "items": "list[*]",
            "fields": {"native_id": "mid", "text": "content"},
            "paging": {"type": "page"},
            "html_text": False,
            "max_pages": 3,
        }
    )
    assert [p.text for p in read_posts(bus)] == ["第一条"]
    assert report.errors["bad_json"] == 1 and report.errors["missing_field"] == 1
    assert report.errors["missing_text"] == 1
