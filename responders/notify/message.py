"""What a notification says: the payload stored with it, and its text for people.

The payload is built once, when the notification is written, from the alert as it was
then; every attempt sends that payload, so a repeat after a crash says the same thing
under the same key. It holds the facts for machines (webhook receivers) and a rendered
subject and text in Simplified Chinese for people (e-mail, group robots).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from pipeline import messages
    from pipeline.settings import Settings
    from pipeline.storage.models import Alert

HEADLINES = {
    "created": "新舆情预警",
    "changed": "舆情预警更新",
    "ack_reminder": "签收即将到期",
    "ack_late": "签收超时",
    "response_reminder": "回应即将到期",
    "response_late": "回应超时，已报领导",
    "press_conference_reminder": "新闻发布会即将到期",
    "press_conference_late": "新闻发布会超时",
    "renotify": "已签收未回应",
}
STATE_LABELS = {
    "new": "待签收",
    "acknowledged": "已签收",
    "responded": "已回应",
    "closed": "已办结",
    "transfer_requested": "转办待审",
    "dismissed": "已排除",
}
SUBJECT_CHARS = 120


@dataclass(frozen=True)
class AlertFacts:
    """The alert as a notification describes it (from a bus message or a stored row)."""

    id: str
    title: str
    department: str
    severity: str
    state: str
    created_at: datetime
    ack_due: datetime | None
    response_due: datetime | None
    press_conference_due: datetime | None = None
    overdue: bool = False

    @classmethod
    def of_message(cls, alert: messages.Alert) -> AlertFacts:
        return cls(
            alert.id,
            alert.title,
            alert.department,
            alert.severity,
            alert.state,
            alert.created_at,
            alert.ack_due,
            alert.response_due,
            None,
            alert.overdue,
        )

    @classmethod
    def of_row(cls, alert: Alert) -> AlertFacts:
        return cls(
            alert.id,
            alert.title,
            alert.department_id,
            alert.severity,
            alert.state,
            alert.created_at,
            alert.ack_due,
            alert.response_due,
            alert.press_conference_due,
            alert.overdue,
        )


@dataclass(frozen=True)
class Labels:
    """Names people read: departments (departments.yaml), severities and the time zone
    (sla.yaml), so the messages follow the district's own config."""

    departments: dict[str, str]
    severities: dict[str, str]
    tz: ZoneInfo

    @classmethod
    def load(cls, settings: Settings) -> Labels:
        from pipeline import config

        sla = config.sla(settings)
        return cls(
            {d.id: d.name for d in config.departments(settings).departments},
            {name: rule.label for name, rule in sla.severities.items()},
            ZoneInfo(sla.timezone),
        )

    def local(self, when: datetime | None) -> str | None:
        return when.astimezone(self.tz).strftime("%Y-%m-%d %H:%M") if when else None


def build_payload(
    kind: str,
    alert: AlertFacts,
    labels: Labels,
    *,
    base_url: str | None = None,
    due_at: datetime | None = None,
) -> dict[str, Any]:
    """The stored payload of a notification of `kind` about `alert` (JSON-ready)."""
    department = labels.departments.get(alert.department, alert.department)
    severity = labels.severities.get(alert.severity, alert.severity)
    link = f"{base_url.rstrip('/')}/alerts/{alert.id}" if base_url else None
    state = STATE_LABELS.get(alert.state, alert.state) + ("（已超期）" if alert.overdue else "")
    facts = [
        ("责任单位", department),
        ("级别", severity),
        ("状态", state),
        ("签收时限", labels.local(alert.ack_due)),
        ("回应时限", labels.local(alert.response_due)),
        ("新闻发布会时限", labels.local(alert.press_conference_due)),
        ("链接", link),
    ]
    headline = HEADLINES[kind]
    subject = f"【{headline}】[{severity}] {alert.title}"
    if len(subject) > SUBJECT_CHARS:
        subject = subject[: SUBJECT_CHARS - 1] + "…"
    return {
        "kind": kind,
        "headline": headline,
        "subject": subject,
        "facts": [[label, value] for label, value in facts if value],
        "due_at": due_at.isoformat() if due_at else None,
        "alert": {
            "id": alert.id,
            "title": alert.title,
            "department": alert.department,
            "department_name": department,
            "severity": alert.severity,
            "severity_label": severity,
            "state": alert.state,
            "overdue": alert.overdue,
            "created_at": alert.created_at.isoformat(),
            "ack_due": _iso(alert.ack_due),
            "response_due": _iso(alert.response_due),
            "press_conference_due": _iso(alert.press_conference_due),
            "link": link,
        },
    }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def plain_text(payload: dict[str, Any]) -> str:
    """The body of an e-mail: headline, title, one fact a line."""
    lines = [payload["headline"], "", payload["alert"]["title"], ""]
    lines += [f"{label}：{value}" for label, value in payload["facts"]]
    return "\n".join(lines) + "\n"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape_markdown(text: str) -> str:
    """Crawled text as literal markdown: HTML escaped (robots render `<font>` and links)
    and markdown syntax backslash-escaped, on one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(" ".join(text.split()), quote=False))


def markdown_facts(payload: dict[str, Any]) -> list[str]:
    """`label：value` lines, values escaped except the link, which becomes one."""
    lines = []
    for label, value in payload["facts"]:
        if label == "链接":
            lines.append(f"[查看预警]({value})")
        else:
            lines.append(f"{label}：{escape_markdown(str(value))}")
    return lines
