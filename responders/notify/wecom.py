"""WeCom group robot (企业微信群机器人): a markdown message to the robot's webhook.

The robot URL's `key` is its only credential (no signing), so the URL comes from the
environment. Content is limited to 4096 bytes; the title is shortened to fit. Like
DingTalk, the robot has no idempotency key, so the key is shown as a reference line.
"""

from __future__ import annotations

from responders.notify.base import Note
from responders.notify.config import NotifyFile, Target
from responders.notify.http import encode, post_json, robot_reply
from responders.notify.message import escape_markdown, markdown_facts

#: 45009: API frequency limit (20 messages a minute per robot); -1: system busy.
RETRY_CODES = (45009,)
MAX_CONTENT_BYTES = 4096
SEVERITY_COLOURS = {"critical": "warning", "high": "warning", "medium": "info", "low": "comment"}


def body(note: Note) -> dict[str, object]:
    payload = note.payload
    colour = SEVERITY_COLOURS.get(payload["alert"]["severity"], "comment")
    head = f'### <font color="{colour}">{payload["headline"]}</font>'
    tail = [*markdown_facts(payload), f"> 编号：{escape_markdown(note.key)}"]
    title = escape_markdown(payload["alert"]["title"])
    while True:
        content = "\n".join([head, f"**{title}**", *tail])
        if len(content.encode()) <= MAX_CONTENT_BYTES or not title:
            break
        title = title[: len(title) * 3 // 4].rstrip("\\")  # no dangling escape
    return {"msgtype": "markdown", "markdown": {"content": content}}


def send(note: Note, target: Target, config: NotifyFile) -> str:
    data = encode(body(note))
    _, reply = post_json(target.resolved_url(), data, {}, config.delivery.timeout.total_seconds())
    return robot_reply(reply, RETRY_CODES)
