"""`config/notify.yaml`: where notifications go and how they are delivered.

The file is data a reviewer can read: named targets (a webhook, a DingTalk or WeCom group
robot, an e-mail list), audiences (press, leadership) made of targets, each department's
own targets, and routes saying which events go to whom. Secrets never appear in it:
a target names the `YUQING_*` environment variables that hold its URL token or signing
secret, and the SMTP password is read from the variable `smtp.password_env` names.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.config import ID_PATTERN, SEVERITIES, load_file
from pipeline.settings import Settings
from pipeline.storage.models import ALERT_STATES, NOTIFICATION_CHANNELS, NOTIFICATION_KINDS
from responders.durations import Duration

NOTIFY_FILE = "notify.yaml"
ENV_PATTERN = r"^YUQING_[A-Z0-9_]+$"
#: The route audience that means "the alert's own department".
DEPARTMENT = "department"
DEFAULT_DEPARTMENT = "default"

# Subscripting with the tuples the schema's CHECK constraints use keeps the two in step.
Channel = Literal[NOTIFICATION_CHANNELS]  # type: ignore[valid-type]
Kind = Literal[NOTIFICATION_KINDS]  # type: ignore[valid-type]
State = Literal[ALERT_STATES]  # type: ignore[valid-type]
Severity = Literal[SEVERITIES]  # type: ignore[valid-type]


class MissingSecret(LookupError):
    """A target's environment variable is not set; the notification cannot be sent."""


def from_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise MissingSecret(f"environment variable {name} is not set")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """One place a notification can go."""

    channel: Channel
    #: Webhook URL that carries no secret; robots' URLs carry their token: use `url_env`.
    url: str | None = Field(None, pattern=r"^https?://")
    url_env: str | None = Field(None, pattern=ENV_PATTERN)
    #: Webhook: the HMAC-SHA256 key; DingTalk: the robot's 加签 secret (optional).
    secret_env: str | None = Field(None, pattern=ENV_PATTERN)
    #: E-mail recipients.
    to: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fits_channel(self) -> Target:
        if self.channel == "email":
            if not self.to:
                raise ValueError("an email target needs `to` (a list of addresses)")
            if self.url or self.url_env or self.secret_env:
                raise ValueError("an email target takes `to` only (SMTP is under `smtp`)")
            if not all("@" in address for address in self.to):
                raise ValueError("`to` must hold e-mail addresses")
            return self
        if self.to:
            raise ValueError(f"`to` is for email targets, not {self.channel}")
        if self.channel in ("dingtalk", "wecom"):
            if self.url or not self.url_env:
                raise ValueError(
                    f"a {self.channel} robot URL carries its access token: name the "
                    "environment variable that holds it in `url_env`, not `url`"
                )
        elif (self.url is None) == (self.url_env is None):
            raise ValueError("a webhook target needs exactly one of `url` and `url_env`")
        if self.channel == "webhook" and not self.secret_env:
            raise ValueError("a webhook target needs `secret_env` (its payloads are signed)")
        if self.channel == "wecom" and self.secret_env:
            raise ValueError("WeCom robots are not signed: drop `secret_env`")
        return self

    def resolved_url(self) -> str:
        return self.url or from_env(self.url_env or "")

    def secret(self) -> str | None:
        return from_env(self.secret_env) if self.secret_env else None


class Smtp(_Strict):
    """The mail relay e-mail targets are sent through."""

    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password_env: str = Field("YUQING_SMTP_PASSWORD", pattern=ENV_PATTERN)
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    timeout: Duration = timedelta(seconds=30)

    def password(self) -> str | None:
        return from_env(self.password_env) if self.username else None


class Delivery(_Strict):
    """Retries: attempt n waits `backoff_initial`·2^(n-1), at most `backoff_max`."""

    poll_every: Duration = timedelta(seconds=2)
    max_attempts: int = Field(10, ge=1)
    backoff_initial: Duration = timedelta(seconds=10)
    backoff_max: Duration = timedelta(minutes=15)
    #: Timeout of one HTTP request.
    timeout: Duration = timedelta(seconds=10)
    #: How long an attempt in flight keeps others (and a restart) from repeating it;
    #: longer than any send can take.
    lease: Duration = timedelta(minutes=2)
    #: Notifications taken per round.
    batch: int = Field(50, ge=1)

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`th failed attempt."""
        return min(self.backoff_initial * 2 ** max(attempts - 1, 0), self.backoff_max)


class Route(_Strict):
    """Events matching every filter given go to each audience or target of `notify`."""

    events: list[Kind] = Field(min_length=1)
    severities: list[Severity] | None = None
    departments: list[str] | None = None
    states: list[State] | None = None
    notify: list[str] = Field(min_length=1)

    def matches(self, kind: str, department: str, severity: str, state: str) -> bool:
        return (
            kind in self.events
            and (self.severities is None or severity in self.severities)
            and (self.departments is None or department in self.departments)
            and (self.states is None or state in self.states)
        )


class NotifyFile(_Strict):
    #: Address of the web app, for links in messages (none when absent).
    base_url: str | None = Field(None, pattern=r"^https?://")
    smtp: Smtp | None = None
    delivery: Delivery = Delivery()
    targets: dict[str, Target] = Field(default_factory=dict)
    #: Named groups of targets a route can address, e.g. `press`, `leadership`.
    audiences: dict[str, list[str]] = Field(default_factory=dict)
    #: Each department's own targets; `default` for departments not listed.
    departments: dict[str, list[str]] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> NotifyFile:
        import re

        for name in self.targets:
            if not re.match(ID_PATTERN, name):
                raise ValueError(f"target id {name!r}: lower case letters, digits and '-'")
        if DEPARTMENT in self.audiences:
            raise ValueError(f"audience {DEPARTMENT!r} is reserved for the alert's department")
        groups = {f"audiences.{k}": v for k, v in self.audiences.items()}
        groups.update({f"departments.{k}": v for k, v in self.departments.items()})
        for where, names in groups.items():
            for name in names:
                if name not in self.targets:
                    raise ValueError(f"{where}: unknown target {name!r}")
        for i, route in enumerate(self.routes):
            for name in route.notify:
                if name != DEPARTMENT and name not in self.audiences and name not in self.targets:
                    raise ValueError(
                        f"routes.{i}.notify: {name!r} is neither {DEPARTMENT!r}, an audience "
                        "nor a target"
                    )
        if self.smtp is None and any(t.channel == "email" for t in self.targets.values()):
            raise ValueError("email targets need the `smtp` section")
        if self.delivery.lease <= max(self.delivery.timeout, self.smtp_timeout):
            raise ValueError("delivery.lease must be longer than every send timeout")
        return self

    @property
    def smtp_timeout(self) -> timedelta:
        return self.smtp.timeout if self.smtp else timedelta(0)

    def department_targets(self, department: str) -> list[str]:
        return self.departments.get(department, self.departments.get(DEFAULT_DEPARTMENT, []))

    def missing_secrets(self) -> list[str]:
        """Environment variables the targets name that are not set (logged at start)."""
        names = [n for t in self.targets.values() for n in (t.url_env, t.secret_env) if n]
        if self.smtp is not None and self.smtp.username:
            names.append(self.smtp.password_env)
        return sorted({n for n in names if not os.environ.get(n)})


def load_notify(settings: Settings) -> NotifyFile:
    """`notify.yaml` of the config directory; absent: nothing is notified."""
    if not (settings.config_dir / NOTIFY_FILE).exists():
        return NotifyFile()
    return load_file(settings.config_dir, NOTIFY_FILE, NotifyFile)
