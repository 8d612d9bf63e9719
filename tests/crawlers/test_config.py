"""sources.yaml: the shipped files validate; mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawlers.config import SourcesFile
from pipeline import config as config_files
from pipeline.settings import load_settings
from tests.crawlers.conftest import REPO


def test_shipped_sources_files_validate(isolated_env: Path) -> None:
    assert config_files.check(REPO / "config") == []
    kinds = {
        s.kind
        for s in config_files.load_file(REPO / "config", "sources.sample.yaml", SourcesFile).sources
    }
    assert kinds == {"feed", "html", "discuz", "json_api", "message_board"}


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            {"kind": "html", "start_urls": ["http://x.cn/"], "list": {"item": "li"}},
            "set `list_only: true`",
        ),
        ({"kind": "feed", "urls": ["ftp://x.cn/rss"]}, "absolute http(s) URL"),
        (
            {
                "kind": "json_api",
                "url": "http://x.cn/api",
                "items": "data",
                "fields": {"text": "t"},
                "paging": {"type": "cursor"},
            },
            "cursor_path",
        ),
        (
            {"kind": "discuz", "base_url": "http://x.cn/", "forums": [2], "interval": "soon"},
            "interval",
        ),
        ({"kind": "feed", "urls": ["http://x.cn/"], "cookies_env": "lower-case"}, "cookies_env"),
        ({"kind": "smoke-signals", "urls": ["http://x.cn/"]}, "kind"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, entry: dict[str, object], problem: str) -> None:
    import yaml

    for name in ("departments.yaml", "sla.yaml"):
        (tmp_path / name).write_bytes((REPO / "config" / name).read_bytes())
    (tmp_path / "sources.yaml").write_text(
        yaml.safe_dump({"sources": [{"id": "src", "name": "n", **entry}]}), encoding="utf-8"
    )
    problems = config_files.check(tmp_path)
    assert problems and all("sources.yaml" in p for p in problems)
    assert any(problem in p for p in problems), problems


def test_duplicate_ids_and_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    src = {"id": "a-feed", "name": "n", "kind": "feed", "urls": ["http://x.cn/"]}
    with pytest.raises(ValueError, match="appears twice"):
        SourcesFile.model_validate({"sources": [src, src]})
    monkeypatch.setenv("T_TOKEN", "tok")
    monkeypatch.setenv("T_COOKIE", "a=1; b=2")
    source = SourcesFile.model_validate(
        {
            "sources": [
                {
                    **src,
                    "headers": {"Referer": "http://x.cn/"},
                    "headers_env": {"X-Token": "T_TOKEN", "X-Unset": "T_NONE"},
                    "cookies_env": "T_COOKIE",
                }
            ]
        }
    ).sources[0]
    assert source.request_headers() == {"Referer": "http://x.cn/", "X-Token": "tok"}
    assert source.request_cookies() == {"a": "1", "b": "2"}


def test_sources_file_setting(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crawlers.config import load_sources

    monkeypatch.setenv("YUQING_SOURCES_FILE", "sources.sample.yaml")
    assert load_sources(load_settings()).get("sample-bbs").kind == "discuz"
