"""Which events go where: `notify.yaml` routes applied to one event of one alert.

An event is an alert change from the `alerts` topic (`created`, `changed`) or an
escalation from the scheduler (`ack_late`, …). Every route whose filters match adds its
audiences' targets; a target named twice gets one notification. The result is rows for
the notification log, each keyed by the event and the target, so writing them again
(a replayed message, a repeated escalation) adds nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from responders.notify.config import DEPARTMENT, NotifyFile
from responders.notify.log import make_key
from responders.notify.message import AlertFacts, Labels, build_payload


def targets(config: NotifyFile, kind: str, alert: AlertFacts) -> list[str]:
    """Target ids for event `kind` of `alert`, in route order, each once."""
    found: list[str] = []
    for route in config.routes:
        if not route.matches(kind, alert.department, alert.severity, alert.state):
            continue
        for name in route.notify:
            if name == DEPARTMENT:
                names = config.department_targets(alert.department)
            else:
                names = config.audiences.get(name, [name])
            found.extend(n for n in names if n not in found)
    return found


class Dispatcher:
    """Turns events into notification rows under one config."""

    def __init__(self, config: NotifyFile, labels: Labels):
        self.config = config
        self.labels = labels

    def rows(
        self, kind: str, alert: AlertFacts, event: str, *, due_at: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Rows for the notification log; `event` identifies the event (a change id, an
        escalation's key) and with the target makes each row's idempotency key."""
        names = targets(self.config, kind, alert)
        if not names:
            return []
        payload = build_payload(
            kind, alert, self.labels, base_url=self.config.base_url, due_at=due_at
        )
        return [
            {
                "idempotency_key": make_key(event, name),
                "alert_id": alert.id,
                "kind": kind,
                "channel": self.config.targets[name].channel,
                "target": name,
                "payload": payload,
            }
            for name in names
        ]
