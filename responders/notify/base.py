"""What every channel gets and how it reports failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from responders.notify.config import NotifyFile, Target


@dataclass(frozen=True)
class Note:
    """One notification to send: its stored key and payload."""

    key: str
    kind: str
    payload: dict[str, Any]


class DeliveryError(Exception):
    """A send that did not go through; `retry` says whether trying again may help
    (a 5xx, a refused connection) or not (a 4xx, a robot refusing the message)."""

    def __init__(self, reason: str, *, retry: bool):
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class Sender(Protocol):
    def __call__(self, note: Note, target: Target, config: NotifyFile) -> str:
        """Deliver `note` to `target`; return a short detail for the attempt log."""
