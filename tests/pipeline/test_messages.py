"""Message schemas: ids, canonical URLs, time zones, validation, JSON round trip."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from pipeline.messages import (
    Alert,
    Classification,
    ClassifiedPost,
    MessageError,
    Post,
    canonical_url,
    mask_name,
    post_id,
)


def test_canonical_url_drops_tracking_fragment_default_port_and_sorts_query() -> None:
    a = canonical_url("HTTP://News.Example.com:80/a/b.html?b=2&utm_source=wx&a=1#comments")
    b = canonical_url("http://news.example.com/a/b.html?a=1&b=2")
    assert a == b == "http://news.example.com/a/b.html?a=1&b=2"
    assert canonical_url("https://x.cn:8443/p") == "https://x.cn:8443/p"


def test_post_id_is_stable_and_prefers_native_id() -> None:
    by_url = post_id("weibo", url="https://m.weibo.cn/status/1?from=share")
    assert by_url == post_id("weibo", url="https://m.weibo.cn/status/1")
    assert post_id("weibo", native_id="1", url="https://a.cn/x") == post_id("weibo", native_id="1")
    assert post_id("a", url="https://a.cn/x") != post_id("b", url="https://a.cn/x")
    with pytest.raises(ValueError):
        post_id("a")


def test_post_without_id_derives_it_and_round_trips() -> None:
    post = Post(
        source="forum",
        url="https://bbs.a.cn/t-1.html",
        text=" 扬尘很大 ",
        published_at="2026-11-20 23:41:00",
    )
    assert post.id == post_id("forum", url="https://bbs.a.cn/t-1.html")
    assert post.text == "扬尘很大"
    # A time without offset is Asia/Shanghai, stored as aware UTC.
    assert post.published_at == datetime(2026, 11, 20, 15, 41, tzinfo=UTC)
    again = Post.from_json(post.to_json())
    assert again == post
    assert b'"schema":1' in post.to_json()


def test_post_without_url_gets_content_id() -> None:
    a = Post(source="ingest", text="同一条内容")
    b = Post(source="ingest", text="同一条内容")
    assert a.id == b.id
    assert a.id != Post(source="ingest", text="另一条").id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{bad json", "not JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ("null", "expected a JSON object, got NoneType"),
        (b"\xff\xfe{}", "not JSON"),
        ("", "not JSON"),
        ('{"text": "x"}', "source: Field required"),
        ('{"source": "s", "text": "   "}', "text: must not be empty"),
        ('{"source": "s", "text": "x", "schema": 7}', "unsupported schema version 7"),
        ('{"source": "s", "text": "x", "url": "javascript:alert(1)"}', "absolute http(s) URL"),
        ('{"source": "s", "text": "x", "published_at": "yesterday"}', "published_at"),
        ('{"source": "s", "text": "x", "metrics": {"views": -1}}', "metrics.views"),
    ],
)
def test_bad_posts_give_one_line_reasons(raw: str | bytes, reason: str) -> None:
    with pytest.raises(MessageError) as err:
        Post.from_json(raw)
    assert reason in err.value.reason
    assert "\n" not in err.value.reason


def test_url_check_fast_path_agrees_with_urlsplit() -> None:
    """The regex that spares most URLs `urlsplit` accepts exactly what `urlsplit` does."""
    rng = random.Random(5)
    heads = ["http://", "https://", "HTTP://", "Https://", "ftp://", "http:/", "http://u@", ""]
    alphabet = "aZ09.-:/?#@[] \t%中_~"
    urls = ["http://example.cn", "https://a.b:8080/x?y=1#z", "http://a:99999", "http://[::1]/"]
    urls += [
        rng.choice(heads) + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        for _ in range(5000)
    ]

    def reference(url: str) -> str | None:
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            return None
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        return url.strip() if ok and url.strip() else None

    for url in urls:
        try:
            got = Post._url(url)
        except ValueError:
            got = None
        assert got == reference(url), url


def test_oversized_text_is_cut_and_flagged() -> None:
    post = Post(source="s", text="字" * 150_000)
    assert len(post.text) == 100_000
    assert post.truncated is True
    assert Post(source="s", text="短").truncated is False


def test_pseudonymise_keeps_no_raw_author() -> None:
    post = Post(source="s", text="x", author="张三丰").pseudonymise("salt")
    assert post.author == "张**"
    assert post.author_hash and "张三丰" not in post.to_json().decode()
    assert post.pseudonymise("salt") == post  # idempotent
    other_salt = Post(source="s", text="x", author="张三丰").pseudonymise("other")
    assert other_salt.author_hash != post.author_hash
    assert mask_name("李") == "*"


def test_classified_post_and_alert_round_trip() -> None:
    post = Post(source="s", text="扬尘")
    cls = Classification(
        post_id=post.id,
        model_version="2026.11.1",
        policy_relevant=True,
        relevance_score=0.9,
        departments=[{"id": "environment", "score": 0.8, "role": "lead"}],
        topic="环境保护",
        sentiment="negative",
        sentiment_score=0.9,
        sensitivity=["切身利益"],
        severity="medium",
        explanation={"departments": ["扬尘"]},
    )
    msg = ClassifiedPost(post=post, classification=cls)
    assert ClassifiedPost.from_json(msg.to_json()) == msg
    alert = Alert(
        change_id="c1",
        id="a1",
        change="created",
        department="environment",
        severity="medium",
        state="new",
        title="扬尘",
        created_at=datetime.now(UTC),
    )
    assert Alert.from_json(alert.to_json()) == alert
