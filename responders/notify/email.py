"""E-mail over SMTP (smtplib): one plain-text message per notification and target.

The `Message-ID` is derived from the idempotency key, so a message repeated after a crash
carries the same id and mail clients and archives show it once; the key itself rides in
`X-Yuqing-Idempotency-Key`. SMTP replies 4xx (and a lost connection) are retried, 5xx are
not: the server will say the same next time.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from responders.notify.base import DeliveryError, Note
from responders.notify.config import NotifyFile, Smtp, Target
from responders.notify.message import plain_text

KEY_HEADER = "X-Yuqing-Idempotency-Key"


def message_id(key: str, sender: str) -> str:
    """`<hash-of-key@sender-domain>`: the same for every attempt of one notification."""
    domain = sender.rpartition("@")[2]
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}.yuqing@{domain}>"


def build(note: Note, target: Target, smtp: Smtp) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = note.payload["subject"]
    message["From"] = smtp.sender
    message["To"] = ", ".join(target.to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(note.key, smtp.sender)
    message[KEY_HEADER] = note.key
    message.set_content(plain_text(note.payload), charset="utf-8")
    return message


def _connect(smtp: Smtp) -> smtplib.SMTP:
    timeout = smtp.timeout.total_seconds()
    if smtp.security == "ssl":
        return smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=timeout, context=ssl.create_default_context()
        )
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    if smtp.security == "starttls":
        client.starttls(context=ssl.create_default_context())
    return client


def send(note: Note, target: Target, config: NotifyFile) -> str:
    smtp = config.smtp
    if smtp is None:  # the schema requires `smtp` with email targets
        raise DeliveryError("no smtp section in notify.yaml", retry=False)
    message = build(note, target, smtp)
    password = smtp.password()  # before connecting: a missing secret touches no server
    try:
        with _connect(smtp) as client:
            if smtp.username and password is not None:
                client.login(smtp.username, password)
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(
            f"all recipients refused: {exc.recipients}"[:500], retry=any(c < 500 for c in codes)
        ) from None
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        reply = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        retry = exc.smtp_code < 500
        raise DeliveryError(f"SMTP {exc.smtp_code}: {reply}"[:500], retry=retry) from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, dropped, timed out, TLS
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:500], retry=True) from None
    if refused:  # some recipients took it: a repeat would only reach the others twice
        return f"sent; refused {sorted(refused)}"
    return f"sent {message['Message-ID']}"
