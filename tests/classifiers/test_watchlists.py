"""Press-office watchlists: rule semantics, source scope, reload without restart."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from classifiers.watchlists import WATCHLISTS_FILE, Watchlists, WatchlistsFile
from pipeline.config import load_file
from pipeline.settings import ConfigError

CONFIG = Path(__file__).resolve().parents[2] / "config"


def ids(hits: list) -> list[str]:
    return [h.rule_id for h in hits]


def test_shipped_rules_validate_and_fire_on_the_sample_fire() -> None:
    file = load_file(CONFIG, WATCHLISTS_FILE, WatchlistsFile)
    assert len(file.rules) >= 3
    w = Watchlists.load(CONFIG)
    text = (
        "某小区发生火灾 致2人死亡\n"
        "11月22日凌晨，区内一老旧小区居民楼发生火灾，消防部门接警后迅速到场处置。"
    )
    hits = w.match(text, "sample-news")
    assert "district-fire-explosion" in ids(hits)
    fire = next(h for h in hits if h.rule_id == "district-fire-explosion")
    assert fire.severity_floor == "high" and fire.department == "emergency"
    assert "火灾" in fire.terms
    assert ids(w.match("学校食堂发生食物中毒，多名学生呕吐")) == ["school-food-poisoning"]
    assert ids(w.match("拆迁补偿款不到位，村民聚集在街道办门口")) == ["demolition-gathering"]
    assert w.match("区内开展消防演练，模拟小区火灾") == []  # `none` phrase


def test_all_any_none() -> None:
    w = Watchlists.from_rules(
        [
            {
                "id": "school-poison",
                "name": "学校中毒",
                "terms": {
                    "all": [["学校", "幼儿园"], "中毒"],
                    "any": ["学生", "孩子"],
                    "none": ["演练"],
                },
            }
        ]
    )
    assert ids(w.match("幼儿园多名孩子中毒")) == ["school-poison"]
    hit = w.match("学校有学生中毒")[0]
    assert hit.terms == ("学校", "中毒", "学生") and hit.name == "学校中毒"
    assert w.match("学校有学生发烧") == []  # an `all` item missing
    assert w.match("学校食堂中毒事件") == []  # no `any` term
    assert w.match("学校学生中毒应急演练") == []  # a `none` term


def test_near_within_characters_either_order() -> None:
    w = Watchlists.from_rules(
        [
            {
                "id": "district-fire",
                "name": "辖区火灾",
                "near": {"terms": [["北湖区", "北湖"], "火灾"], "within": 5},
            }
        ]
    )
    assert ids(w.match("北湖区火灾")) == ["district-fire"]  # adjacent: 0 characters apart
    assert ids(w.match("北湖区昨晚一处火灾")) == ["district-fire"]  # 4 apart
    assert ids(w.match("火灾发生在北湖")) == ["district-fire"]  # the other order, 3 apart
    assert w.match("北湖区今天天气晴朗，另外外地一处火灾") == []  # too far
    # Overlapping synonyms are both seen: 北湖 inside 北湖区.
    assert set(w.match("北湖区火灾")[0].terms) >= {"火灾"}


def test_source_scope() -> None:
    w = Watchlists.from_rules(
        [
            {
                "id": "board-only",
                "name": "留言板",
                "terms": {"any": ["没人管"]},
                "sources": ["board"],
            },
            {"id": "everywhere", "name": "全部", "terms": {"any": ["没人管"]}},
        ]
    )
    assert ids(w.match("反映了也没人管", "board")) == ["board-only", "everywhere"]
    assert ids(w.match("反映了也没人管", "weibo")) == ["everywhere"]
    assert ids(w.match("反映了也没人管")) == ["everywhere"]  # unknown source: unscoped only


def test_disabled_rules_and_ascii_case() -> None:
    w = Watchlists.from_rules(
        [
            {"id": "px", "name": "PX项目", "terms": {"all": ["PX", "项目"]}},
            {"id": "off", "name": "停用", "terms": {"any": ["项目"]}, "enabled": False},
        ]
    )
    assert ids(w.match("反对px项目落地")) == ["px"]
    assert ids(w.match("反对PX项目落地")) == ["px"]


def test_batch() -> None:
    w = Watchlists.from_rules([{"id": "fire", "name": "火", "terms": {"any": ["火灾"]}}])
    assert [ids(h) for h in w.match_batch(["火灾", "晴天"], ["a", "b"])] == [["fire"], []]
    assert [ids(h) for h in w.match_batch(["火灾"])] == [["fire"]]


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"id": "x1", "name": "无条件"}, "needs terms.all, terms.any or near"),
        ({"id": "Bad Id", "name": "n", "terms": {"any": ["a"]}}, "id"),
        (
            {"id": "x2", "name": "n", "terms": {"any": ["a"]}, "severity_floor": "urgent"},
            "severity",
        ),
        ({"id": "x3", "name": "n", "terms": {"any": ["a"]}, "colour": "red"}, "colour"),
        ({"id": "x4", "name": "n", "near": {"terms": ["a"], "within": 3}}, "near"),
        ({"id": "x5", "name": "n", "terms": {"any": ["a b"]}}, "any"),
    ],
)
def test_schema_rejects(rule: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        WatchlistsFile.model_validate({"rules": [rule]})


def test_schema_rejects_duplicate_ids() -> None:
    rule = {"id": "dup", "name": "n", "terms": {"any": ["a"]}}
    with pytest.raises(ValidationError, match="appears twice"):
        WatchlistsFile.model_validate({"rules": [rule, rule]})


# --------------------------------------------------------------------------- reload


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, rules: list[dict] | str) -> None:
    """Write the file the way an editor would, and make sure its mtime moves on even on
    file systems with coarse timestamps."""
    text = rules if isinstance(rules, str) else yaml.safe_dump({"rules": rules}, allow_unicode=True)
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns <= before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


RULE_A = {"id": "rule-a", "name": "甲", "terms": {"any": ["火灾"]}}
RULE_B = {"id": "rule-b", "name": "乙", "terms": {"any": ["爆炸"]}}


def test_reloads_on_change_at_most_every_check_interval(tmp_path: Path) -> None:
    path, clock = tmp_path / WATCHLISTS_FILE, Clock()
    write(path, [RULE_A])
    w = Watchlists(path, check_every=3.0, clock=clock)
    assert ids(w.match("火灾爆炸")) == ["rule-a"]

    write(path, [RULE_A, RULE_B])
    clock.now += 1.0  # within the interval: the file is not even looked at
    assert ids(w.match("火灾爆炸")) == ["rule-a"]
    clock.now += 2.5
    assert ids(w.match("火灾爆炸")) == ["rule-a", "rule-b"]
    assert w.last_error is None


def test_invalid_file_keeps_previous_rules_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock = tmp_path / WATCHLISTS_FILE, Clock()
    write(path, [RULE_A])
    w = Watchlists(path, check_every=1.0, clock=clock)

    caplog.set_level(logging.ERROR, logger="classifiers.watchlists")
    write(path, [RULE_A, {"id": "rule-b", "name": "乙"}])  # a rule with no terms
    clock.now += 2
    assert ids(w.match("火灾")) == ["rule-a"]
    assert w.last_error and "rules.1" in w.last_error and WATCHLISTS_FILE in w.last_error
    clock.now += 2
    w.match("火灾")
    assert len([r for r in caplog.records if "invalid" in r.getMessage()]) == 1

    write(path, "rules: [unclosed\n")  # not even YAML
    clock.now += 2
    assert ids(w.match("火灾")) == ["rule-a"]
    assert "cannot read" in (w.last_error or "")

    write(path, [RULE_B])  # fixed: the new rules take over
    clock.now += 2
    assert ids(w.match("火灾爆炸")) == ["rule-b"]
    assert w.last_error is None


def test_deleted_file_keeps_rules(tmp_path: Path) -> None:
    path, clock = tmp_path / WATCHLISTS_FILE, Clock()
    write(path, [RULE_A])
    w = Watchlists(path, check_every=1.0, clock=clock)
    path.unlink()
    clock.now += 2
    assert ids(w.match("火灾")) == ["rule-a"]
    write(path, [RULE_B])
    clock.now += 2
    assert ids(w.match("爆炸")) == ["rule-b"]


def test_start_without_file_or_with_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / WATCHLISTS_FILE
    assert Watchlists(path).match("火灾") == []  # no file: no rules, later added
    write(path, "rules: 3\n")
    with pytest.raises(ConfigError, match="rules"):
        Watchlists(path)
    lenient = Watchlists(path, strict=False, check_every=0)
    assert lenient.match("火灾") == [] and lenient.last_error
    write(path, [RULE_A])
    assert ids(lenient.match("火灾")) == ["rule-a"]


def test_force_reload_and_version(tmp_path: Path) -> None:
    path = tmp_path / WATCHLISTS_FILE
    write(path, [RULE_A])
    w = Watchlists(path, check_every=3600)
    version = w.version
    write(path, [RULE_B])
    assert w.reload(force=True)
    assert ids(w.match("爆炸")) == ["rule-b"] and w.version != version
    assert [r.id for r in w.rules] == ["rule-b"]
