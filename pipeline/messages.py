"""Message schemas on the bus: Post (`posts.raw`), ClassifiedPost (`posts.classified`),
Alert (`alerts`). JSON, UTF-8, each with a `schema` version field.

A consumer accepts every version in `SUPPORTED_SCHEMAS`; a message with another version
or a shape that does not validate is a poison message for the stage runner (→ DLQ).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 1
SUPPORTED_SCHEMAS = frozenset({1})
MAX_TEXT_CHARS = 100_000
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

TOPIC_POSTS_RAW = "posts.raw"
TOPIC_POSTS_CLASSIFIED = "posts.classified"
TOPIC_ALERTS = "alerts"
TOPICS = (TOPIC_POSTS_RAW, TOPIC_POSTS_CLASSIFIED, TOPIC_ALERTS)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


class MessageError(ValueError):
    """A message that cannot be decoded or validated; `reason` is for logs and the DLQ."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def aware(value: datetime) -> datetime:
    """Aware UTC; a time without offset is Asia/Shanghai (DESIGN: Posts)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


# URLs that `urlsplit` certainly reads as http(s) with a host: lower-case scheme, a host
# of letters, digits, dots and hyphens, an optional port, then anything but whitespace.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#]\S*)?")

# Query parameters that track the reader, not the page.
_TRACKING = re.compile(
    r"^(utm_\w+|spm|from|share_\w+|isappinstalled|timestamp|_t|s_trans\w*)$", re.I
)


def canonical_url(url: str) -> str:
    """One spelling per page: lower-case scheme and host, default port and fragment
    dropped, tracking parameters removed, the rest sorted."""
    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)
    )
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def post_id(
    source: str, *, url: str | None = None, native_id: str | None = None, text: str | None = None
) -> str:
    """Stable id: source + the channel's own id, else + canonical URL, else + text."""
    if native_id:
        basis = f"id:{native_id}"
    elif url:
        basis = f"url:{canonical_url(url)}"
    elif text is not None:
        basis = "text:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    else:
        raise ValueError("a post id needs a native id, a URL or the text")
    digest = hashlib.sha256(f"{source}\n{basis}".encode()).hexdigest()[:24]
    return f"{source}:{digest}" if len(source) <= 40 else digest


def mask_name(name: str) -> str:
    """Display form of an author: first character kept, the rest starred."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    return name[0] + "*" * min(len(name) - 1, 6)


def author_hash(name: str, salt: str) -> str:
    return hmac.new(salt.encode(), name.strip().encode(), hashlib.sha256).hexdigest()[:32]


class Message(BaseModel):
    """Base of every bus message: `schema` version, JSON (de)serialisation."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    schema_version: int = Field(SCHEMA_VERSION, alias="schema")

    @field_validator("schema_version")
    @classmethod
    def _supported(cls, v: int) -> int:
        if v not in SUPPORTED_SCHEMAS:
            raise ValueError(
                f"unsupported schema version {v} (supported: {sorted(SUPPORTED_SCHEMAS)})"
            )
        return v

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")

    @classmethod
    def from_json(cls: type[M], raw: bytes | str) -> M:
        """Decode; MessageError with a one-line reason for anything malformed.

        Parsed and validated in one pass by pydantic-core: every stage decodes every
        message, and `json.loads` followed by validation cost a quarter more."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as err:
            first = err.errors()[0]
            if first["type"] == "json_invalid":
                raise MessageError(f"not JSON: {first['ctx']['error']}") from None
            if first["type"] == "model_type" and not first["loc"]:
                got = type(first["input"]).__name__
                raise MessageError(f"expected a JSON object, got {got}") from None
            raise MessageError(describe(err)) from None

    @classmethod
    def from_dict(cls: type[M], data: Any) -> M:
        if not isinstance(data, dict):
            raise MessageError(f"expected a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise MessageError(describe(err)) from None


M = TypeVar("M", bound=Message)


def describe(err: ValidationError) -> str:
    """A ValidationError as one line: `field: problem; field: problem`."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "message"
        parts.append(f"{loc}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


class Metrics(BaseModel):
    model_config = ConfigDict(extra="ignore")
    views: int | None = Field(None, ge=0)
    replies: int | None = Field(None, ge=0)
    reposts: int | None = Field(None, ge=0)
    likes: int | None = Field(None, ge=0)


class OfficialReply(BaseModel):
    """A message board's official reply (feeds response tracking)."""

    text: str = Field(min_length=1)
    time: datetime | None = None
    by: str | None = None

    @field_validator("time")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return aware(v) if v else v


Channel = Literal["feed", "html", "discuz", "json_api", "message_board", "ingest"]


class Post(Message):
    """A post as crawled or ingested (DESIGN: Posts)."""

    TYPE: ClassVar[str] = "post"
    id: str = Field("", max_length=200)
    source: str = Field(min_length=1, max_length=100)
    channel: Channel = "ingest"
    native_id: str | None = Field(None, max_length=200)
    url: str | None = Field(None, max_length=4000)
    title: str | None = Field(None, max_length=1000)
    author: str | None = Field(None, max_length=200, description="masked display form")
    author_hash: str | None = None
    text: str
    truncated: bool = False
    published_at: datetime | None = None
    fetched_at: datetime = Field(default_factory=now_utc)
    metrics: Metrics | None = None
    reply: OfficialReply | None = None
    floor: int | None = Field(None, ge=0, description="forum floor (楼层); 1 is the first post")
    parent_id: str | None = None
    snapshot: str | None = Field(None, description="original page/JSON: zlib, then base64")

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("published_at", "fetched_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return aware(v) if v else v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if _PLAIN_URL.fullmatch(v):  # the common case, without urlsplit's cost (~10 µs)
            return v
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an absolute http(s) URL")
        return v.strip()

    @model_validator(mode="before")
    @classmethod
    def _truncate(cls, data: Any) -> Any:
        """Over-long text is cut and flagged rather than rejected (DESIGN: Posts)."""
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            text = data["text"].strip()
            if len(text) > MAX_TEXT_CHARS:
                data = {**data, "text": text[:MAX_TEXT_CHARS], "truncated": True}
            elif text != data["text"]:
                data = {**data, "text": text}
        return data

    @model_validator(mode="after")
    def _id(self) -> Post:
        if not self.id:
            self.id = post_id(self.source, url=self.url, native_id=self.native_id, text=self.text)
        return self

    def pseudonymise(self, salt: str) -> Post:
        """Replace the author's name by its masked form and a salted hash (idempotent)."""
        if not self.author or self.author_hash:
            return self
        return self.model_copy(
            update={"author": mask_name(self.author), "author_hash": author_hash(self.author, salt)}
        )


class DepartmentScore(BaseModel):
    id: str
    score: float = Field(ge=0, le=1)
    role: Literal["lead", "co"] = "lead"


Severity = Literal["critical", "high", "medium", "low", "none"]
Sentiment = Literal["negative", "neutral", "positive"]


class Classification(BaseModel):
    """A model's verdict on one post (DESIGN: Classification output)."""

    post_id: str
    model_version: str
    policy_relevant: bool
    relevance_score: float = Field(ge=0, le=1)
    departments: list[DepartmentScore] = Field(default_factory=list)
    topic: str | None = None
    sentiment: Sentiment
    sentiment_score: float = Field(ge=0, le=1)
    sensitivity: list[str] = Field(default_factory=list)
    severity: Severity
    explanation: dict[str, list[str]] = Field(default_factory=dict)
    classified_at: datetime = Field(default_factory=now_utc)


class ClassifiedPost(Message):
    """`posts.classified`: the post with its classification, for the responder."""

    TYPE: ClassVar[str] = "classified_post"
    post: Post
    classification: Classification


AlertState = Literal[
    "new", "acknowledged", "responded", "closed", "transfer_requested", "dismissed"
]


class Alert(Message):
    """`alerts` (keyed by department id): for notifiers and other systems."""

    TYPE: ClassVar[str] = "alert"
    change_id: str = Field(min_length=1, description="idempotency key of this change")
    id: str
    event_id: str | None = None
    change: Literal["created", "changed"]
    department: str
    severity: Severity
    state: AlertState
    title: str
    topic: str | None = None
    sentiment: Sentiment | None = None
    sources: list[str] = Field(default_factory=list)
    heat: float = 0.0
    created_at: datetime
    ack_due: datetime | None = None
    response_due: datetime | None = None
    overdue: bool = False
