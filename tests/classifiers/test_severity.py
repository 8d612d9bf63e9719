"""Severity from sentiment, relevance, sensitivity and watchlist hits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from classifiers.models.sensitivity import (
    NO_SENSITIVITY,
    CategoryScore,
    Sensitivity,
    SensitivityScorer,
)
from classifiers.severity import (
    LEVELS,
    SEVERITY_FILE,
    SeverityConfig,
    SeverityGrader,
    load_config,
    severity,
)
from classifiers.watchlists import WatchHit, Watchlists
from pipeline.config import load_file

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture(scope="module")
def config() -> SeverityConfig:
    return load_file(CONFIG, SEVERITY_FILE, SeverityConfig)


@pytest.fixture(scope="module")
def scorer() -> SensitivityScorer:
    return SensitivityScorer.load(CONFIG)


def sens(*categories: tuple[str, float], **counts: int) -> Sensitivity:
    return Sensitivity(tuple(CategoryScore(c, s, (f"{c}词",)) for c, s in categories), dict(counts))


def grade(
    config: SeverityConfig,
    sensitivity: Sensitivity = NO_SENSITIVITY,
    sentiment: str = "neutral",
    p: float = 0.9,
    relevant: bool = True,
    hits: tuple[WatchHit, ...] = (),
) -> str:
    return severity(
        sentiment=sentiment,
        sentiment_score=p,
        relevant=relevant,
        relevance_score=0.9 if relevant else 0.1,
        sensitivity=sensitivity,
        watch_hits=hits,
        config=config,
    ).level


# The severity table of config/severity.yaml, case by case.
TABLE = [
    # (sensitivity, sentiment, probability, relevant, expected)
    (sens(("突发事件", 0.99), deaths=2), "negative", 0.9, True, "critical"),
    (sens(("突发事件", 0.99), deaths=1), "neutral", 0.8, True, "critical"),
    (sens(("社会秩序", 0.95), crowd=200), "negative", 0.8, True, "critical"),
    (sens(("社会秩序", 0.98)), "negative", 0.8, True, "critical"),
    (sens(("突发事件", 0.95), injuries=5), "neutral", 0.8, True, "high"),
    (sens(("突发事件", 0.9), missing=1), "neutral", 0.8, True, "high"),
    (sens(("突发事件", 0.92)), "neutral", 0.8, True, "high"),
    (sens(("社会秩序", 0.9)), "neutral", 0.8, True, "high"),
    (sens(("社会秩序", 0.7), crowd=30), "neutral", 0.8, True, "high"),
    (sens(("形象公信", 0.9)), "negative", 0.8, True, "high"),
    (sens(("形象公信", 0.6), ("切身利益", 0.7), ("社会秩序", 0.65)), "neutral", 0.8, True, "high"),
    (sens(("形象公信", 0.9)), "neutral", 0.8, True, "low"),  # misconduct claimed neutrally
    (sens(("切身利益", 0.84)), "negative", 0.93, True, "medium"),  # 扬尘 complaint
    (sens(), "negative", 0.93, True, "medium"),  # strongly negative, no lexicon terms
    (sens(("突发事件", 0.75)), "neutral", 0.8, True, "medium"),  # a fire, no casualties
    (sens(), "negative", 0.6, True, "low"),
    (sens(("重大政策", 0.7)), "neutral", 0.8, True, "low"),
    (sens(("重大政策", 0.7)), "positive", 0.9, True, "low"),
    (sens(), "neutral", 0.9, True, "none"),
    (sens(), "positive", 0.95, True, "none"),
    (sens(), "negative", 0.95, False, "none"),  # irrelevant: a film review
    (sens(("切身利益", 0.6)), "negative", 0.9, False, "none"),
    (sens(("突发事件", 0.99), deaths=3), "negative", 0.9, False, "critical"),  # relevance miss
]


@pytest.mark.parametrize(("sensitivity", "sentiment", "p", "relevant", "expected"), TABLE)
def test_table(
    config: SeverityConfig,
    sensitivity: Sensitivity,
    sentiment: str,
    p: float,
    relevant: bool,
    expected: str,
) -> None:
    assert grade(config, sensitivity, sentiment, p, relevant) == expected


def test_deadly_fire_end_to_end(config: SeverityConfig, scorer: SensitivityScorer) -> None:
    text = "某小区发生火灾致2人死亡"
    result = severity(
        sentiment="negative",
        sentiment_score=0.9,
        relevant=True,
        relevance_score=0.95,
        sensitivity=scorer.score(text),
        watch_hits=Watchlists.load(CONFIG).match(text),
        config=config,
    )
    assert result.level == "critical" and result.rule == "incident-deaths"
    assert "火灾" in result.terms and "2人死亡" in result.terms


def test_dust_complaint_and_entertainment(
    config: SeverityConfig, scorer: SensitivityScorer
) -> None:
    dust = (
        "小区旁边工地夜间施工，扬尘噪声严重。我们小区东侧的工地最近一个月天天夜里施工到"
        "凌晨两点，渣土车进进出出，扬尘很大，窗户都不敢开。打过12345也没人管。"
    )
    result = severity(
        sentiment="negative",
        sentiment_score=0.93,
        relevant=True,
        relevance_score=0.97,
        sensitivity=scorer.score(dust),
        sentiment_terms=["没人管"],
        config=config,
    )
    assert result.level == "medium"
    assert "扬尘" in result.terms and "没人管" in result.terms
    show = "某明星新剧开播，粉丝热情高涨，收视率破纪录"
    assert (
        severity(
            sentiment="positive",
            sentiment_score=0.9,
            relevant=False,
            relevance_score=0.03,
            sensitivity=scorer.score(show),
            config=config,
        ).level
        == "none"
    )


def test_watchlist_floors_only_raise(config: SeverityConfig) -> None:
    floor_high = WatchHit("district-fire", "辖区火灾", ("区内", "火灾"), "high", "emergency")
    no_floor = WatchHit("hotline", "12345", ("12345",))
    result = severity(
        sentiment="neutral",
        sentiment_score=0.8,
        relevant=True,
        relevance_score=0.9,
        sensitivity=sens(("突发事件", 0.75)),
        watch_hits=[floor_high],
        config=config,
    )
    assert result == ("high", "watchlist:district-fire", ("区内", "火灾"))
    # No floor of its own: the configured watchlist_floor (low), also for irrelevant posts.
    assert grade(config, sens(), "neutral", 0.9, False, (no_floor,)) == "low"
    # A floor below the graded level changes nothing.
    assert grade(config, sens(("突发事件", 0.99), deaths=1), hits=(floor_high,)) == "critical"


def test_levels_and_shipped_config() -> None:
    assert LEVELS == ("none", "low", "medium", "high", "critical")
    cfg = load_config(CONFIG)
    ranks = [LEVELS.index(r.level) for r in cfg.ordered_rules()]
    assert ranks == sorted(ranks, reverse=True)


def _config(**changes: object) -> dict:
    data = yaml.safe_load((CONFIG / SEVERITY_FILE).read_text(encoding="utf-8"))
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"id": "r1", "level": "urgent", "when": {"categories": "any"}}, "level"),
        ({"id": "r2", "level": "low", "when": {}}, "at least one requirement"),
        ({"id": "r3", "level": "low", "when": {"categories": ["娱乐"]}}, "categories"),
        ({"id": "r4", "level": "low", "when": {"min_sentiment_score": 0.5}}, "needs sentiment"),
        ({"id": "r5", "level": "low", "when": {"min_score": 1.5}}, "min_score"),
    ],
)
def test_schema_rejects(rule: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        SeverityConfig.model_validate(_config(rules=[rule]))


def test_thresholds_are_data(config: SeverityConfig) -> None:
    data = _config()
    for rule in data["rules"]:
        if rule["id"] == "incident-deaths":
            rule["when"]["counts"] = {"deaths": 3}  # the district: critical from 3 deaths
    stricter = SeverityConfig.model_validate(data)
    two_dead = sens(("突发事件", 0.99), deaths=2)
    assert grade(config, two_dead) == "critical"
    assert grade(stricter, two_dead) == "high"


def test_grader_checks_count_kinds_against_the_lexicon(
    config: SeverityConfig, scorer: SensitivityScorer
) -> None:
    SeverityGrader(config, count_kinds=scorer.lexicon.counts)  # the shipped pair agrees
    data = _config()
    data["rules"][0]["when"]["counts"] = {"death": 1}  # typo: would never hold
    with pytest.raises(ValueError, match="incident-deaths: death"):
        SeverityGrader(SeverityConfig.model_validate(data), count_kinds=scorer.lexicon.counts)
