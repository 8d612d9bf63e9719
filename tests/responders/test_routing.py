"""Routing: the classifier's departments, overridden by rules; triage for the unknown."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import DepartmentsFile, load_file
from pipeline.messages import DepartmentScore
from pipeline.settings import ConfigError, load_settings
from responders.routing import (
    RouteInput,
    Router,
    RoutingFile,
    RoutingRule,
    watchlist_departments,
)
from tests.responders.conftest import CONFIG

DEPARTMENTS = load_file(CONFIG, "departments.yaml", DepartmentsFile)


def scores(*items: tuple[str, float, str]) -> list[DepartmentScore]:
    return [DepartmentScore(id=d, score=s, role=r) for d, s, r in items]


def route(
    router: Router,
    *depts: tuple[str, float, str],
    text: str = "工地扬尘",
    source: str = "local-forum",
    watchlists: tuple[str, ...] = (),
    topic: str = "环境保护",
):
    return router.route(RouteInput(source, text, topic, scores(*depts), watchlists))


@pytest.fixture(scope="module")
def shipped() -> Router:
    settings = load_settings(config_dir=CONFIG)
    return Router(
        load_file(CONFIG, "routing.yaml", RoutingFile), DEPARTMENTS, watchlist_departments(settings)
    )


def test_classifier_lead_and_co(shipped: Router) -> None:
    r = route(
        shipped,
        ("environment", 0.8, "lead"),
        ("urban-enforcement", 0.4, "co"),
        ("water", 0.1, "co"),
    )
    assert (r.lead, r.co) == ("environment", ("urban-enforcement", "water"))
    assert r.departments == [("environment", "lead"), ("urban-enforcement", "co"), ("water", "co")]


@pytest.mark.parametrize(
    "depts",
    [
        [("no-such-dept", 0.9, "lead")],
        [("environment", 0.1, "lead"), ("water", 0.05, "co")],
        [],
    ],
    ids=["unknown", "low-confidence", "none"],
)
def test_unknown_or_unsure_goes_to_triage(shipped: Router, depts: list) -> None:
    r = route(shipped, *depts)
    assert (r.lead, r.co) == ("gov-office", ())


def test_unknown_co_is_dropped(shipped: Router) -> None:
    r = route(shipped, ("environment", 0.8, "lead"), ("made-up", 0.5, "co"))
    assert (r.lead, r.co) == ("environment", ())


def test_watchlist_department_leads(shipped: Router) -> None:
    r = route(shipped, ("safety", 0.7, "lead"), watchlists=("district-fire-explosion",))
    assert (r.lead, r.co) == ("emergency", ("safety",))
    assert "watchlist:district-fire-explosion" in r.reasons


def test_rules_by_source_region_and_keyword(shipped: Router) -> None:
    r = route(
        shipped,
        ("environment", 0.8, "lead"),
        source="district-message-board",
        text="街道办不管，也没人处理",
    )
    assert (r.lead, r.co) == ("environment", ("gov-services", "subdistricts"))  # max_co 2
    assert r.reasons == [
        "classifier:environment:0.8",
        "rule:message-board",
        "rule:street-level",
    ]


def test_rule_lead_overrides_a_low_confidence_classifier() -> None:
    config = RoutingFile(
        rules=[RoutingRule(id="subway", keywords=["地铁"], lead="transport", replace_co=True)],
        max_co=3,
    )
    router = Router(config, DEPARTMENTS)
    r = route(router, ("environment", 0.1, "lead"), ("water", 0.05, "co"), text="地铁站外排长队")
    assert (r.lead, r.co) == ("transport", ())
    r = route(router, ("environment", 0.9, "lead"), text="公园")
    assert r.lead == "environment"
    with_co = Router(
        RoutingFile(rules=[RoutingRule(id="rx", topics=["环境保护"], lead="water")]), DEPARTMENTS
    )
    assert route(with_co, ("environment", 0.9, "lead")).departments == [
        ("water", "lead"),
        ("environment", "co"),
    ]


def test_rule_to_an_unknown_department_goes_to_triage() -> None:
    router = Router(
        RoutingFile(rules=[RoutingRule(id="rx", keywords=["扬尘"], lead="ghost")]), DEPARTMENTS
    )
    assert route(router, ("environment", 0.9, "lead")).lead == "gov-office"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: [{id: ra, lead: water}]\n", "at least one of"),
        ("rules: [{id: ra, keywords: [x]}]\n", "`lead` or `co`"),
        ("rules: [{id: ra, regions: [nowhere], co: [water]}]\n", "unknown region"),
        ("rules: [{id: ra, keywords: [x], co: [w]}, {id: ra, keywords: [y], co: [w]}]\n", "twice"),
        ("min_confidence: 2\n", "min_confidence"),
    ],
)
def test_bad_file(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "routing.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_file(tmp_path, "routing.yaml", RoutingFile)
    assert problem in str(err.value)
