"""DingTalk group robot (钉钉自定义机器人): a markdown message to the robot's webhook.

With 加签 (signing) enabled the URL gets `timestamp` (milliseconds) and `sign`, the
Base64 HMAC-SHA256 under the robot's secret of `"{timestamp}\\n{secret}"`; DingTalk
refuses a timestamp more than an hour off. The robot has no idempotency key: a repeat
after a crash shows twice in the group, so the key is shown as a reference line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlencode

from responders.notify.base import Note
from responders.notify.config import NotifyFile, Target
from responders.notify.http import encode, post_json, robot_reply
from responders.notify.message import escape_markdown, markdown_facts

#: 130101: sending too fast (20 messages a minute per robot).
RETRY_CODES = (130101,)


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    query = urlencode({"timestamp": timestamp_ms, "sign": base64.b64encode(digest).decode()})
    return f"{url}{'&' if '?' in url else '?'}{query}"


def body(note: Note) -> dict[str, object]:
    payload = note.payload
    lines = [
        f"### {payload['headline']}",
        f"**{escape_markdown(payload['alert']['title'])}**",
        *markdown_facts(payload),
        f"编号：{escape_markdown(note.key)}",
    ]
    return {
        "msgtype": "markdown",
        # DingTalk markdown needs a blank line between paragraphs.
        "markdown": {"title": payload["subject"], "text": "\n\n".join(lines)},
    }


def send(note: Note, target: Target, config: NotifyFile) -> str:
    url = target.resolved_url()
    secret = target.secret()
    if secret:
        url = signed_url(url, secret, int(time.time() * 1000))
    _, reply = post_json(url, encode(body(note)), {}, config.delivery.timeout.total_seconds())
    return robot_reply(reply, RETRY_CODES)
