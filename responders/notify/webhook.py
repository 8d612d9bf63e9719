"""Generic webhook: the payload as signed JSON.

Headers: `Idempotency-Key` (the same on every attempt of one notification, so the
receiver can drop repeats), `X-Yuqing-Timestamp` (Unix seconds of this attempt) and
`X-Yuqing-Signature: sha256=HEX`, the HMAC-SHA256 under the target's secret of
`"{timestamp}." + body`. Signing the timestamp with the body lets a receiver refuse a
replayed old request (`verify` with a tolerance) while accepting our own retries.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from responders.notify.base import DeliveryError, Note
from responders.notify.config import NotifyFile, Target
from responders.notify.http import encode, post_json

IDEMPOTENCY_HEADER = "Idempotency-Key"
TIMESTAMP_HEADER = "X-Yuqing-Timestamp"
SIGNATURE_HEADER = "X-Yuqing-Signature"
#: How old a signed request a receiver should still accept (`verify`).
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


def send(note: Note, target: Target, config: NotifyFile) -> str:
    secret = target.secret()
    if secret is None:  # the schema requires secret_env; this keeps an unsigned send out
        raise DeliveryError("webhook target without a signing secret", retry=False)
    body = encode({"idempotency_key": note.key, **note.payload})
    timestamp = str(int(time.time()))
    headers = {
        IDEMPOTENCY_HEADER: note.key,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    status, _ = post_json(
        target.resolved_url(), body, headers, config.delivery.timeout.total_seconds()
    )
    return f"HTTP {status}"
