"""`sources.yaml`: the crawl sources, one entry per site, no code per source.

Registered for `yuqing config check` (entry point `yuqing.config`). Every kind shares the
politeness fields of `SourceBase`; each adds what its pages need. A field left out takes
its default from `crawlers.settings`.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crawlers import settings as defaults
from pipeline.config import (
    ID_PATTERN,
    check_timezone,
    load_file,
    parse_duration,
    require_unique_ids,
)
from pipeline.settings import Settings

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an absolute http(s) URL, got {value!r}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceBase(_Strict):
    """What every source has: identity, schedule, time zone and politeness overrides."""

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    enabled: bool = True
    interval: str = defaults.DEFAULT_INTERVAL
    timezone: str = "Asia/Shanghai"
    max_pages: int = Field(defaults.DEFAULT_MAX_PAGES, ge=1, le=1000)
    robots: bool | None = Field(None, description="obey robots.txt (default: yes)")
    user_agent: str | None = None
    proxy_env: str | None = Field(None, pattern=ENV_NAME, description="env var with proxy URL")
    encoding: str | None = Field(None, description="force a page encoding (e.g. gb18030)")
    download_delay: float | None = Field(None, ge=0)
    concurrency: int | None = Field(None, ge=1, le=16, description="requests per domain")
    timeout: float | None = Field(None, gt=0, le=300)
    max_bytes: int | None = Field(None, ge=1024)
    headers: dict[str, str] = Field(default_factory=dict, description="plain, non-secret")
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="header name -> env var holding its value"
    )
    cookies_env: str | None = Field(None, pattern=ENV_NAME, description="env var: 'a=1; b=2'")
    block_patterns: list[str] = Field(
        default_factory=list, description="extra regexes for captcha/login URLs and pages"
    )

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        parse_duration(v)
        return v

    _tz = field_validator("timezone")(check_timezone)

    @field_validator("headers_env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v.values():
            if not re.match(ENV_NAME, name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return v

    @field_validator("block_patterns")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regex {pattern!r}: {exc}") from exc
        return v

    @property
    def interval_delta(self) -> timedelta:
        amount, unit = parse_duration(self.interval)
        return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def request_headers(self, environ: dict[str, str] | None = None) -> dict[str, str]:
        """Plain headers plus those read from the environment (secrets stay out of YAML);
        a variable that is not set is skipped. Cookies go separately (`request_cookies`)."""
        env = os.environ if environ is None else environ
        out = dict(self.headers)
        for header, var in self.headers_env.items():
            if env.get(var):
                out[header] = env[var]
        return out

    def request_cookies(self, environ: dict[str, str] | None = None) -> dict[str, str]:
        """Cookies from the `cookies_env` variable (`a=1; b=2`), e.g. a logged-in session."""
        env = os.environ if environ is None else environ
        raw = env.get(self.cookies_env or "", "") if self.cookies_env else ""
        pairs = (part.split("=", 1) for part in raw.split(";") if "=" in part)
        return {name.strip(): value.strip() for name, value in pairs}


Selector = Annotated[str, Field(min_length=1)]


class DetailFields(_Strict):
    """Selectors on a detail page. CSS by default, `xpath:` prefix for XPath; a selector
    that matches elements takes their text, `::text`/`::attr(x)` take that."""

    title: Selector | None = "h1"
    body: Selector = "article, .content, #content"
    date: Selector | None = None
    author: Selector | None = None
    views: Selector | None = None
    replies: Selector | None = None


class ListFields(_Strict):
    """Selectors on a list page: `item` picks each entry, the others are relative to it."""

    item: Selector
    link: Selector = "a::attr(href)"
    title: Selector | None = "a"
    date: Selector | None = None
    summary: Selector | None = None
    author: Selector | None = None


def _urls(v: list[str]) -> list[str]:
    return [_http_url(u) for u in v]


class FeedSource(SourceBase):
    """RSS 2.0, RSS 1.0 (RDF) or Atom; optionally follow each link for the full text."""

    kind: Literal["feed"]
    urls: list[str] = Field(min_length=1)
    detail: DetailFields | None = None

    _check_urls = field_validator("urls")(_urls)


class ListSourceBase(SourceBase):
    """Sources read from list pages with a next-page link (`html`, `message_board`)."""

    start_urls: list[str] = Field(min_length=1)
    list: ListFields
    next_page: Selector | None = None

    _check_urls = field_validator("start_urls")(_urls)


class HtmlSource(ListSourceBase):
    """List pages → detail pages (or the list alone), with pagination."""

    kind: Literal["html"]
    list_only: bool = False
    detail: DetailFields | None = None

    @model_validator(mode="after")
    def _detail_or_list_only(self) -> HtmlSource:
        if self.detail is None and not self.list_only:
            raise ValueError("give `detail` selectors, or set `list_only: true`")
        return self


class BoardDetailFields(DetailFields):
    """A message (网民留言) and the official reply (官方回复) when there is one."""

    reply: Selector | None = None
    reply_time: Selector | None = None
    reply_by: Selector | None = None


class MessageBoardSource(ListSourceBase):
    """Government message boards (网民留言/问政): list → message with its official reply."""

    kind: Literal["message_board"]
    detail: BoardDetailFields


class DiscuzSelectors(_Strict):
    """Discuz! X3 markup; override only for a heavily customised template."""

    thread: Selector = "tbody[id^=normalthread_]"
    thread_link: Selector = "a.xst::attr(href)"
    thread_title: Selector = "a.xst"
    thread_replies: Selector = "td.num a"
    thread_views: Selector = "td.num em"
    post: Selector = "#postlist > div[id^=post_]"
    post_author: Selector = ".authi a.xw1, .authi a"
    post_time: Selector = "em[id^=authorposton]"
    post_body: Selector = "td.t_f"
    post_floor: Selector = "a[id^=postnum] em, a[id^=postnum]"
    page_title: Selector = "#thread_subject"
    next_page: Selector = "div.pg a.nxt::attr(href)"


class DiscuzSource(SourceBase):
    """Discuz! X forums: forumdisplay pages → viewthread pages; every floor is a post."""

    kind: Literal["discuz"]
    base_url: str
    forums: list[int] = Field(min_length=1)
    thread_pages: int = Field(3, ge=1, le=100, description="pages read per thread")
    selectors: DiscuzSelectors = DiscuzSelectors()

    _check_base = field_validator("base_url")(_http_url)


class Paging(_Strict):
    """`page`: a page number parameter; `cursor`: a value read from each response
    (Weibo's `since_id`); `resume`: start the next crawl from the last cursor."""

    type: Literal["none", "page", "cursor"] = "none"
    param: str = "page"
    start: int = 1
    cursor_path: str | None = None
    resume: bool = False

    @model_validator(mode="after")
    def _cursor_path(self) -> Paging:
        if self.type == "cursor" and not self.cursor_path:
            raise ValueError("cursor paging needs `cursor_path`")
        return self


class JsonFields(_Strict):
    """Paths into one item (`user.screen_name`, `pics[0].url`); `url` may instead be a
    template over item paths (`https://m.weibo.cn/detail/{id}`)."""

    text: str
    native_id: str | None = None
    title: str | None = None
    author: str | None = None
    url: str | None = None
    published_at: str | None = None
    views: str | None = None
    replies: str | None = None
    reposts: str | None = None
    likes: str | None = None


class JsonApiSource(SourceBase):
    """Social timelines and search APIs returning JSON (Weibo-style mobile timeline)."""

    kind: Literal["json_api"]
    url: str
    items: str = Field(description="path to the list of items, e.g. data.cards[*].mblog")
    fields: JsonFields
    paging: Paging = Paging()
    html_text: bool = Field(True, description="item text is HTML (Weibo) rather than plain")

    _check_url = field_validator("url")(_http_url)


Source = Annotated[
    FeedSource | HtmlSource | DiscuzSource | JsonApiSource | MessageBoardSource,
    Field(discriminator="kind"),
]


class SourcesFile(_Strict):
    sources: list[Source] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SourcesFile:
        require_unique_ids(self.sources, "source")
        return self

    def get(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        known = ", ".join(s.id for s in self.sources) or "(none)"
        raise KeyError(f"no source {source_id!r} in the sources file; known: {known}")


def sources_path(settings: Settings) -> Path:
    path = Path(settings.sources_file)
    return path if path.is_absolute() else settings.config_dir / path


def load_sources(settings: Settings) -> SourcesFile:
    """The validated sources file the settings name; ConfigError names file and key."""
    path = sources_path(settings)
    return load_file(path.parent, path.name, SourcesFile)
