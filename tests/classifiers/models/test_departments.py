"""Department router: calibrated ranking, lead/co/triage decisions, lexicon rules,
persistence, and the sanity cases of issue 3 on a router trained on the real corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from classifiers.models.departments import (
    RULES_FILE,
    DepartmentRouter,
    DepartmentRules,
    DepartmentRulesFile,
    catalogue,
    decide,
    decide_batch,
)
from classifiers.tokenize import Tokenizer
from pipeline.settings import ConfigError

CONFIG = Path(__file__).resolve().parents[3] / "config"

# Project-written toy posts (not real data, not an evaluation set). `secrecy` has one
# item only: it should be reachable through a rule, not through learning.
TOY: list[tuple[str, str]] = [
    ("孩子入学报名材料怎么准备", "education"),
    ("幼儿园招生名额太少", "education"),
    ("学校老师乱收补课费", "education"),
    ("中考加分政策有变化", "education"),
    ("工地扬尘太大，空气很差", "environment"),
    ("化工厂排污，河边一股臭味", "environment"),
    ("夜间施工噪声扰民", "environment"),
    ("雾霾天气高排放车还在上路", "environment"),
    ("路边占道经营乱摆摊", "urban-enforcement"),
    ("城管执法拆除违建", "urban-enforcement"),
    ("流动商贩堵住小区门口", "urban-enforcement"),
    ("开墙打洞开小卖部", "urban-enforcement"),
    ("政务公开栏很久没更新", "gov-office"),
    ("市长热线打不通", "gov-office"),
    ("人大代表建议办理情况", "gov-office"),
    ("政府信息公开申请没有答复", "gov-office"),
    ("单位文件管理不规范", "secrecy"),
]
CLASSES = ["gov-office", "education", "environment", "urban-enforcement", "secrecy", "water"]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(CONFIG / "lexicon")


@pytest.fixture(scope="module")
def toy(tokenizer: Tokenizer) -> tuple[list[str], list[list[str]], list[str]]:
    texts = [t for t, _ in TOY]
    return texts, tokenizer.tokenize_batch(texts), [d for _, d in TOY]


@pytest.fixture(scope="module")
def router(toy: tuple[list[str], list[list[str]], list[str]]) -> DepartmentRouter:
    texts, tokens, labels = toy
    return DepartmentRouter(classes=CLASSES, floor=0.1, cv_folds=4).fit(texts, tokens, labels)


def rules(data: dict) -> DepartmentRules:
    return DepartmentRules.from_mapping({"version": 1, "departments": data})


# ------------------------------------------------------------------ decisions --------


def test_lead_alone_when_the_runner_up_is_far_behind() -> None:
    ranked = [("environment", 0.8), ("water", 0.1), ("housing", 0.05)]
    assert decide(ranked, triage="gov-office") == ("environment", (), False)


def test_co_responsible_when_close_and_high_enough() -> None:
    ranked = [("environment", 0.45), ("urban-enforcement", 0.3), ("housing", 0.2), ("x", 0.05)]
    # 0.3 ≥ 0.2 and ≥ 0.5 × 0.45; 0.2 ≥ 0.2 but 0.2 < 0.225
    assert decide(ranked, triage="gov-office") == ("environment", ("urban-enforcement",), False)
    both = decide(ranked, triage="gov-office", co_ratio=0.4)
    assert both == ("environment", ("urban-enforcement", "housing"), False)
    assert decide(ranked, triage="gov-office", co_ratio=0.4, max_co=1)[1] == ("urban-enforcement",)
    assert decide(ranked, triage="gov-office", co_min=0.35)[1] == ()


def test_triage_below_the_floor() -> None:
    ranked = [("water", 0.2), ("environment", 0.19)]
    assert decide(ranked, triage="gov-office") == ("gov-office", (), True)
    assert decide(ranked, triage="gov-office", floor=0.15) == ("water", (), False)
    routed = decide(ranked, triage="gov-office", floor=0.15, co_min=0.1)
    assert routed == ("water", ("environment",), False)
    assert decide([], triage="gov-office") == ("gov-office", (), True)


def test_decide_batch_is_decide_row_by_row() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(8, 0.3), size=200)
    top = -np.sort(-p, axis=1)
    triaged, co = decide_batch(top, floor=0.3, co_min=0.15, co_ratio=0.4, max_co=2)
    for i in range(len(top)):
        ranked = [(f"d{j}", float(s)) for j, s in enumerate(top[i])]
        _, co_ids, tri = decide(ranked, triage="t", floor=0.3, co_min=0.15, co_ratio=0.4)
        assert tri == triaged[i]
        assert co_ids == tuple(f"d{j}" for j in np.flatnonzero(co[i]))


# ------------------------------------------------------------------ the model --------


def test_probabilities_sum_to_one_over_every_department(
    router: DepartmentRouter, toy: tuple[list[str], list[list[str]], list[str]]
) -> None:
    texts, tokens, _ = toy
    p = router.predict_proba(texts, tokens)
    assert p.shape == (len(texts), len(CLASSES))
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert router.temperature > 0 and router.oof_proba_ is not None
    ranked = router.rank(texts[:1], tokens[:1])[0]
    assert ranked[0][0] == "education"
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    # `water` has no training item: it is in the output, as the least likely
    assert p[:, CLASSES.index("water")].max() <= p.max(axis=1).min()


def test_routes_the_toy_posts(
    router: DepartmentRouter, toy: tuple[list[str], list[list[str]], list[str]]
) -> None:
    texts, tokens, labels = toy
    routes = router.route(texts, tokens)
    hits = sum(r.lead == y for r, y in zip(routes, labels, strict=True))
    assert hits >= len(labels) - 2
    for r in routes:
        assert r.ranked[0] == (r.lead, pytest.approx(r.ranked[0][1]), "lead")
        assert [d for d, _, role in r.ranked[1:]] == list(r.co)
        assert all(role == "co" for _, _, role in r.ranked[1:])
        assert len(r.candidates) == min(router.top_k, len(CLASSES))


def test_a_rule_makes_a_thin_department_reachable(
    router: DepartmentRouter, tokenizer: Tokenizer
) -> None:
    text = "有人把涉密文件拍照发到群里，造成泄密"
    tokens = [tokenizer.tokenize(text)]
    router.set_rules(None)
    assert router.route([text], tokens)[0].lead != "secrecy"
    try:
        router.set_rules(rules({"secrecy": {"weight": 4, "terms": ["泄密", "涉密"]}}))
        route = router.route([text], tokens)[0]
        assert route.lead == "secrecy" and not route.triaged
        assert {"泄密", "涉密"} <= set(route.terms)
        p = router.predict_proba([text], tokens)
        np.testing.assert_allclose(p.sum(), 1.0)
    finally:
        router.set_rules(None)


def test_rules_take_the_strongest_match_not_the_sum() -> None:
    text = "河道黑臭水体治理，黑臭问题反复"
    one = rules({"water": {"weight": 2, "terms": ["黑臭"]}})
    many = rules({"water": {"weight": 2, "terms": ["黑臭", "黑臭水体", "河道"]}})
    boost_one, _ = one.boosts([text], CLASSES)
    boost_many, hits = many.boosts([text], CLASSES)
    assert boost_one[0, CLASSES.index("water")] == 2
    np.testing.assert_array_equal(boost_one, boost_many)
    # overlapping terms all fire (黑臭 inside 黑臭水体), each listed once per post
    fired = hits.for_columns(np.array([CLASSES.index("water")]), 5)[0]
    assert sorted(t for t, _ in fired) == sorted(["黑臭", "黑臭水体", "河道"])


def test_rule_file_validation() -> None:
    r = rules({"gov-office": {"terms": [12345, {"市长热线": 3}]}})
    assert sorted(r.rules) == [("12345", "gov-office", 2.0), ("市长热线", "gov-office", 3.0)]
    with pytest.raises(ValueError, match="twice"):
        rules({"water": {"terms": ["河道", {"河道": 2}]}})
    with pytest.raises(ValueError):
        rules({"water": {"weight": 0, "terms": ["河道"]}})
    with pytest.raises(ValueError):
        rules({"water": {"terms": [{"河道": 2, "水库": 1}]}})
    with pytest.raises(ValueError):
        rules({"water": {"terms": []}})


def test_rules_for_unknown_departments_are_ignored_with_a_warning(
    router: DepartmentRouter, tokenizer: Tokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    text = "某词出现了"
    before = router.predict_proba([text], [tokenizer.tokenize(text)])
    try:
        with caplog.at_level("WARNING", logger="classifiers.models.departments"):
            router.set_rules(rules({"nowhere": {"terms": ["某词"]}}))
        assert "nowhere" in caplog.text and router.unknown_rule_departments == ["nowhere"]
        after = router.predict_proba([text], [tokenizer.tokenize(text)])
        np.testing.assert_array_equal(before, after)
    finally:
        router.set_rules(None)


def test_rule_file_errors_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("departments:\n  water:\n    weight: -1\n    terms: [河道]\n", "utf-8")
    with pytest.raises(ConfigError) as err:
        DepartmentRules.load(path)
    assert str(path) in str(err.value) and "departments.water.weight" in str(err.value)
    with pytest.raises(ConfigError, match="missing"):
        DepartmentRules.load(tmp_path / "nope.yaml")


def test_shipped_rules_are_valid_and_name_catalogue_departments() -> None:
    data = yaml.safe_load((CONFIG / RULES_FILE).read_text(encoding="utf-8"))
    DepartmentRulesFile.model_validate(data)
    shipped = DepartmentRules.load(CONFIG / RULES_FILE)
    ids, triage = catalogue(CONFIG)
    assert shipped.departments == set(ids)  # every department has rules
    assert triage == "gov-office"


def test_explain_returns_terms_of_the_post(router: DepartmentRouter, tokenizer: Tokenizer) -> None:
    text = "小区旁边工地扬尘很大"
    terms = router.explain(text, tokenizer.tokenize(text))
    assert terms and all(t in text for t in terms)
    assert router.explain(text, tokenizer.tokenize(text), department="education") is not None


def test_empty_post_is_triaged_or_routed_without_error(router: DepartmentRouter) -> None:
    route = router.route([""], [[]])[0]
    assert route.lead in CLASSES and route.terms == []


def test_save_load_round_trip(
    router: DepartmentRouter, toy: tuple[list[str], list[list[str]], list[str]], tmp_path: Path
) -> None:
    texts, tokens, _ = toy
    path = tmp_path / "departments.skops"
    router.save(path)
    r = rules({"secrecy": {"weight": 4, "terms": ["泄密"]}})
    loaded = DepartmentRouter.load(path, rules=r)
    assert DepartmentRouter.load(path, rules=None).rules is None
    router.set_rules(r)
    try:
        assert loaded.route(texts, tokens) == router.route(texts, tokens)
        np.testing.assert_array_equal(
            loaded.predict_proba(texts, tokens), router.predict_proba(texts, tokens)
        )
    finally:
        router.set_rules(None)
    assert loaded.params() == router.params() and loaded.temperature == router.temperature
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta == loaded.metadata
    assert meta["train_counts"]["secrecy"] == 1 and meta["train_counts"]["water"] == 0


def test_fit_checks_labels_and_triage(toy: tuple[list[str], list[list[str]], list[str]]) -> None:
    texts, tokens, labels = toy
    with pytest.raises(ValueError, match="not among"):
        DepartmentRouter(classes=["gov-office"]).fit(texts, tokens, labels)
    with pytest.raises(ValueError, match="triage"):
        DepartmentRouter(classes=CLASSES, triage="nowhere").fit(texts, tokens, labels)


# ------------------------------------------------------------------ real corpus ------

# Issue 3's sanity cases, written for this test in the style of citizens' messages.
SANITY: list[tuple[str, str]] = [
    ("我家孩子今年上小学，入学报名需要哪些材料？招生政策什么时候公布？", "education"),
    ("幼儿园报名太难了，排了一晚上队还没报上", "education"),
    ("小区旁边工地扬尘严重，晚上施工噪声吵得睡不着，多次投诉没人管", "environment"),
    ("楼下广场舞噪音扰民，每天晚上到十点", "environment"),
    ("路口天天有人占道经营，摆摊卖水果，行人都过不去", "urban-enforcement"),
    ("退休三个月了养老金还没发下来，打电话也没人接", "hr-social"),
    ("村边河道黑臭，夏天味道熏人，希望尽快治理", "water"),
]


@pytest.fixture(scope="module")
def real_router(tokenizer: Tokenizer) -> DepartmentRouter:
    """The shipped recipe on the real corpus train split (a few seconds)."""
    from classifiers.models.departments import train

    router, _ = train(tokenizer, config_dir=CONFIG)
    router.set_rules(DepartmentRules.load(CONFIG / RULES_FILE))
    return router


@pytest.mark.parametrize(("text", "expected"), SANITY)
def test_sanity_cases(
    real_router: DepartmentRouter, tokenizer: Tokenizer, text: str, expected: str
) -> None:
    route = real_router.route([text], [tokenizer.tokenize(text)])[0]
    assert route.lead == expected, route
    assert not route.triaged


def test_real_router_covers_the_catalogue(real_router: DepartmentRouter) -> None:
    ids, triage = catalogue(CONFIG)
    assert real_router.classes == ids and real_router.triage == triage
    counts = real_router.metadata["train_counts"]
    assert counts["secrecy"] == 9 and sum(counts.values()) == 2004


def test_load_attaches_the_configured_rules_by_default(
    router: DepartmentRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "departments.skops"
    router.save(path)
    monkeypatch.setenv("YUQING_CONFIG_DIR", str(CONFIG))
    loaded = DepartmentRouter.load(path)
    assert loaded.rules == DepartmentRules.load(CONFIG / RULES_FILE)
    monkeypatch.setenv("YUQING_CONFIG_DIR", str(tmp_path))  # no rules file there
    assert DepartmentRouter.load(path).rules is None
