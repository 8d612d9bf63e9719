"""Alert rules: gate, floors, spikes, minimum severity, and the YAML schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import check, load_file
from pipeline.settings import ConfigError
from responders.rules import AlertRulesFile, EventFacts, Rules
from tests.responders.conftest import CONFIG


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules(load_file(CONFIG, "alert_rules.yaml", AlertRulesFile))


def test_gate_counts_relevant_posts_and_watchlist_hits(rules: Rules) -> None:
    assert rules.passes_gate(0.5, ())
    assert not rules.passes_gate(0.49, ())
    assert rules.passes_gate(0.1, ("district-fire-explosion",))


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (EventFacts(None, 500.0), None),  # nothing relevant: no alert, however hot
        (EventFacts("none", 20.0), None),
        (EventFacts("low", 20.0), "low"),
        (EventFacts("none", 85.0), "medium"),  # heat floor
        (EventFacts("low", 130.0), "high"),
        (EventFacts("critical", 20.0), "critical"),  # floors never lower
        (EventFacts("low", 20.0, ("district-fire-explosion",)), "high"),
        (EventFacts("low", 20.0, ("unlisted-rule",)), "low"),
        (EventFacts("none", 20.0, spike=True), "low"),
        (EventFacts("high", 20.0, spike=True), "critical"),
        (EventFacts("critical", 20.0, spike=True), "critical"),
    ],
)
def test_severity(rules: Rules, facts: EventFacts, expected: str | None) -> None:
    verdict = rules.evaluate(facts)
    assert (verdict.severity if verdict else None) == expected


def test_reasons_name_every_lift(rules: Rules) -> None:
    verdict = rules.evaluate(EventFacts("low", 131.0, ("school-food-poisoning",), spike=True))
    assert verdict is not None and verdict.severity == "critical"
    assert verdict.reasons == [
        "classifier:low",
        "watchlist:school-food-poisoning:high",
        "spike:critical",
    ]


def test_min_severity_and_co_alerts() -> None:
    strict = Rules(AlertRulesFile(min_severity="medium"))
    assert strict.evaluate(EventFacts("low", 20.0)) is None
    assert strict.evaluate(EventFacts("medium", 20.0)).severity == "medium"
    assert strict.co_alerts("medium") and not strict.co_alerts("low")


def test_heat_formula() -> None:
    heat = AlertRulesFile().heat
    assert heat.score(1, 1, 1) == 20.0
    assert heat.score(200, 5, 200) == pytest.approx(176.24, abs=0.01)


def test_shipped_files_validate() -> None:
    problems = [p for p in check(CONFIG) if "alert_rules" in p or "routing" in p]
    assert problems == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("min_severity: urgent\n", "min_severity"),
        ("clustering: {max_distance: 9}\n", "clustering.max_distance"),
        ("heat: {weights: {likes: 1}}\n", "unknown heat weights"),
        ("watchlists: {BAD ID: high}\n", "not a rule id"),
        ("spike: {k: 0}\n", "spike.k"),
        ("surprise: 1\n", "surprise"),
    ],
)
def test_bad_file_names_key_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "alert_rules.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_file(tmp_path, "alert_rules.yaml", AlertRulesFile)
    assert problem in str(err.value) and "alert_rules.yaml" in str(err.value)
