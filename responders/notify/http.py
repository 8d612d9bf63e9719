"""JSON over HTTP POST for the webhook channels, with failures sorted into retry or not.

The standard library is enough for one POST at a time, and keeps the notifier free of
an HTTP client dependency. Proxies follow the usual `https_proxy`/`no_proxy` variables.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from responders.notify.base import DeliveryError

#: Answers that say "later" rather than "never".
RETRY_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "yuqing-notifier/1"
REPLY_BYTES = 64 * 1024


def post_json(url: str, data: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST `data` (from `encode`); the status and (start of the) reply of a 2xx answer.

    Raises DeliveryError: retry for 408/425/429, 5xx and network errors (refused,
    reset, timed out), not for other 4xx, which repeat the same way every time."""
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(REPLY_BYTES)
    except urllib.error.HTTPError as exc:
        status = exc.code
        reply = exc.read(500).decode("utf-8", "replace").strip()
        retry = status >= 500 or status in RETRY_STATUSES
        raise DeliveryError(f"HTTP {status}: {reply}"[:500], retry=retry) from None
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, DNS, timeout
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{type(exc).__name__}: {reason}"[:500], retry=True) from None


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, key-sorted UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def robot_reply(reply: bytes, retry_codes: Iterable[int]) -> str:
    """Check a group robot's `{"errcode": 0, "errmsg": "ok"}` answer (DingTalk, WeCom
    answer HTTP 200 even when they refuse a message)."""
    try:
        answer = json.loads(reply)
        code = int(answer.get("errcode", -1))
    except (ValueError, TypeError, AttributeError):
        raise DeliveryError(f"unreadable robot reply: {reply[:200]!r}", retry=True) from None
    if code != 0:
        message = str(answer.get("errmsg", ""))[:300]
        retry = code in set(retry_codes) or code == -1  # -1: system busy
        raise DeliveryError(f"robot errcode {code}: {message}", retry=retry)
    return "errcode 0"
