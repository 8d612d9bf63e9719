"""Personal data is masked before a post is published or stored."""

from __future__ import annotations

from pipeline.messages import OfficialReply, Post
from pipeline.textprep import EMPTY_TEXT, prepare_post


def test_text_title_and_reply_are_cleaned_and_masked() -> None:
    post = Post(
        source="board",
        title="<b>投诉</b> 电话13812345678",
        text="我的手机 138-1234-5678，邮箱 zhang.san@example.com，车牌京A12345",
        reply=OfficialReply(text="已联系您 13812345678"),
    )
    prepared = prepare_post(post)
    assert "13812345678" not in prepared.to_json().decode()
    assert "[手机号]" in prepared.text and "[邮箱]" in prepared.text
    assert "[车牌号]" in prepared.text
    assert prepared.title == "投诉 电话[手机号]"
    assert prepared.reply is not None and "[手机号]" in prepared.reply.text
    assert prepared.id == post.id  # the id stays what the source gave
    assert prepare_post(prepared) == prepared  # idempotent


def test_text_that_cleans_away_is_never_kept_raw() -> None:
    post = Post(source="s", text="https://t.cn/abc?tel=13812345678")
    assert prepare_post(post).text == EMPTY_TEXT
