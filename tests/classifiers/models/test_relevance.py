"""Relevance model and the shared subword-linear core: exactness of the token-by-token
scoring, calibration, explanations, persistence and the THUCNews loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.features import TokenIndex, token_ids
from classifiers.models.linear import SubwordLinear, SubwordVocabulary, token_features
from classifiers.models.relevance import RelevanceModel, binary_metrics, fit_platt
from classifiers.tokenize import Tokenizer

CONFIG = Path(__file__).resolve().parents[3] / "config"

# Project-written toy posts (not real data, not an evaluation set): enough to check
# mechanics, not quality.
RELEVANT = [
    "小区门口的垃圾堆了三天没人清运，臭味很大",
    "孩子今年上小学，入学报名要准备哪些材料",
    "工地夜间施工噪声扰民，投诉多次没有结果",
    "养老金调整方案公布，退休人员每月增加",
    "河道黑臭水体治理工程今年开工",
    "街道办组织社区志愿者清理小广告",
    "医院挂号难，看病排队一上午",
    "公交线路调整后，居民出行不方便",
]
IRRELEVANT = [
    "新款游戏手机发布，售价三千九百九十九元",
    "明星夫妇现身机场，疑似官宣恋情",
    "今日大盘震荡上行，券商板块领涨",
    "球队主场三比一逆转取胜，球迷欢呼",
    "这款面霜补水效果好，双十一限时特价",
    "新番动画定档七月，声优阵容曝光",
    "基金经理看好下半年科技股行情",
    "网游新版本上线，玩家抢购限定皮肤",
]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(CONFIG / "lexicon")


@pytest.fixture(scope="module")
def toy(tokenizer: Tokenizer) -> tuple[list[str], list[list[str]], list[int]]:
    texts = RELEVANT + IRRELEVANT
    return texts, tokenizer.tokenize_batch(texts), [1] * len(RELEVANT) + [0] * len(IRRELEVANT)


@pytest.fixture(scope="module")
def model(toy: tuple[list[str], list[list[str]], list[int]]) -> RelevanceModel:
    texts, tokens, y = toy
    return RelevanceModel(cv_folds=4).fit(texts, tokens, y)


def test_token_features_are_the_word_and_its_inner_ngrams() -> None:
    assert token_features("扬") == ("扬",)
    assert token_features("扬尘") == ("扬尘", "扬", "尘")
    grams = ("黑臭", "臭水", "水体", "黑臭水", "臭水体")
    assert token_features("黑臭水体") == ("黑臭水体", *"黑臭水体", *grams)


def test_token_table_reproduces_the_training_matrix(tokenizer: Tokenizer) -> None:
    """The per-token rows give exactly X @ coef + intercept (to float32 rounding),
    also with repeated n-grams inside a token and with featureless tokens."""
    docs = [*RELEVANT, "哈哈哈哈哈 这个 2024 年 的 事", "", "！！！"]
    tokens = tokenizer.tokenize_batch(docs)
    vocab = SubwordVocabulary.fit(tokens[:6], min_df=1)
    rng = np.random.default_rng(0)
    coef = rng.standard_normal((len(vocab.features), 3)).astype(np.float32)
    intercept = rng.standard_normal(3)
    linear = SubwordLinear.from_vocabulary(vocab, coef, intercept, scale=0.7, tokens=TokenIndex())
    expected = 0.7 * (vocab.transform(tokens) @ coef.astype(np.float64) + intercept)
    np.testing.assert_allclose(linear.decision(tokens), expected, rtol=1e-5, atol=1e-5)
    # a second call (rows cached) and a cold model give the same numbers
    np.testing.assert_array_equal(linear.decision(tokens), linear.decision(tokens))
    linear.reset_cache()
    np.testing.assert_allclose(linear.decision(tokens), expected, rtol=1e-5, atol=1e-5)


def test_stopwords_punctuation_and_numbers_do_not_change_scores(
    model: RelevanceModel, tokenizer: Tokenizer
) -> None:
    lean = Tokenizer(CONFIG / "lexicon", drop_stopwords=True, drop_numbers=True)
    text = "我们小区的垃圾，已经堆了3天了！"
    full = model.predict_proba([text], tokenizer.tokenize_batch([text]))
    assert model.predict_proba([text], lean.tokenize_batch([text])) == pytest.approx(full)


def test_probabilities_are_calibrated_and_separate_the_toy_classes(
    model: RelevanceModel, toy: tuple[list[str], list[list[str]], list[int]]
) -> None:
    texts, tokens, y = toy
    p = model.predict_proba(texts, tokens)
    assert p.shape == (len(texts),)
    assert np.all((p >= 0) & (p <= 1))
    assert p[: len(RELEVANT)].min() > p[len(RELEVANT) :].max()
    assert model.predict(texts, tokens).tolist() == [bool(v) for v in y]
    assert model.platt[0] > 0  # higher SVM score, higher probability
    assert model.oof_proba_ is not None and model.oof_proba_.shape == (len(texts),)


def test_empty_post_gets_a_probability(model: RelevanceModel) -> None:
    p = model.predict_proba([""], [[]])
    assert 0 <= p[0] <= 1
    assert model.explain("", []) == []


def test_explain_returns_terms_of_the_post(model: RelevanceModel, tokenizer: Tokenizer) -> None:
    text = "小区垃圾没人清运，居民投诉"
    terms = model.explain(text, tokenizer.tokenize(text))
    assert terms and all(t in text for t in terms)
    _, batch_terms = model.predict_with_terms([text], [tokenizer.tokenize(text)])
    assert batch_terms[0] == terms
    weighted = model.explain_weighted([text], [tokenizer.tokenize(text)])[0]
    weights = [w for _, w in weighted]
    assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)


def test_precomputed_token_ids_give_the_same_result(
    model: RelevanceModel, toy: tuple[list[str], list[list[str]], list[int]]
) -> None:
    texts, tokens, _ = toy
    ids = token_ids(tokens)
    np.testing.assert_array_equal(
        model.predict_proba(texts, ids), model.predict_proba(texts, tokens)
    )


def test_a_full_token_index_starts_over_without_changing_results(
    toy: tuple[list[str], list[list[str]], list[int]],
) -> None:
    texts, tokens, y = toy
    small = TokenIndex(max_tokens=5)
    trained = RelevanceModel(cv_folds=0).fit(texts, tokens, y)
    assert trained.linear is not None
    reference = trained.linear.decision(tokens)
    trained.linear.tokens = small
    trained.linear.reset_cache()
    first = trained.linear.decision(tokens)
    second = trained.linear.decision(tokens)  # index was over its limit: new generation
    assert small.generation >= 1
    np.testing.assert_allclose(first, reference, rtol=1e-6)
    np.testing.assert_array_equal(first, second)
    stale = small.lookup(tokens[:2])
    small.lookup([["一"] * 10])
    with pytest.raises(ValueError, match="older generation"):
        token_ids(stale, small)


def test_save_load_round_trip(
    model: RelevanceModel, toy: tuple[list[str], list[list[str]], list[int]], tmp_path: Path
) -> None:
    texts, tokens, _ = toy
    path = tmp_path / "relevance.skops"
    model.metadata["version"] = "test"
    model.save(path)
    loaded = RelevanceModel.load(path)
    np.testing.assert_array_equal(
        loaded.predict_proba(texts, tokens), model.predict_proba(texts, tokens)
    )
    assert loaded.explain(texts[0], tokens[0]) == model.explain(texts[0], tokens[0])
    assert loaded.params() == model.params()
    sidecar = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["version"] == "test" and loaded.metadata == sidecar
    assert len(sidecar["train_digest"]) == 64


def test_load_refuses_untrusted_types(tmp_path: Path) -> None:
    import fractions

    import skops.io as sio

    path = tmp_path / "evil.skops"
    sio.dump({"kind": "relevance", "format": 1, "x": fractions.Fraction(1, 3)}, path)
    with pytest.raises(ValueError, match="untrusted"):
        RelevanceModel.load(path)


def test_deterministic_training(toy: tuple[list[str], list[list[str]], list[int]]) -> None:
    texts, tokens, y = toy
    a = RelevanceModel(cv_folds=4, seed=3).fit(texts, tokens, y)
    b = RelevanceModel(cv_folds=4, seed=3).fit(texts, tokens, y)
    assert a.platt == b.platt
    np.testing.assert_array_equal(a.predict_proba(texts, tokens), b.predict_proba(texts, tokens))


def test_fit_rejects_one_class_and_mismatched_lengths(
    toy: tuple[list[str], list[list[str]], list[int]],
) -> None:
    texts, tokens, _ = toy
    with pytest.raises(ValueError, match="both"):
        RelevanceModel().fit(texts, tokens, [1] * len(texts))
    with pytest.raises(ValueError, match="length"):
        RelevanceModel().fit(texts, tokens[:-1], [1] * len(texts))


def test_platt_scaling_and_metrics() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-2 * s))).astype(int)
    a, b = fit_platt(s, y)
    assert a == pytest.approx(2, abs=0.3) and b == pytest.approx(0, abs=0.2)
    m = binary_metrics(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.2, 0.6]))
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == 0.5


def test_thucnews_is_pinned_and_keeps_test_items_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from classifiers.datasets import thucnews
    from classifiers.datasets.departments import norm_key

    heldout = thucnews.load_thucnews("heldout")
    train = thucnews.load_thucnews("train")
    assert 0.08 < len(heldout) / (len(heldout) + len(train)) < 0.12
    assert {h.topic for h in train} == set(thucnews.TOPICS)
    test_keys = thucnews.corpus_test_keys()
    assert not any(norm_key(h.text) in test_keys for h in (*train, *heldout))
    assert not {norm_key(h.text) for h in train} & {norm_key(h.text) for h in heldout}

    monkeypatch.setattr(thucnews.metadata, "version", lambda _: "1.4.0")
    with pytest.raises(FileNotFoundError, match=r"1\.0\.4"):
        thucnews.thucnews_path()


def test_load_refuses_estimators_in_the_state(tmp_path: Path) -> None:
    """skops trusts scikit-learn objects by default; a model state never holds one."""
    import skops.io as sio
    from sklearn.svm import LinearSVC

    path = tmp_path / "odd.skops"
    sio.dump({"kind": "relevance", "format": 1, "clf": LinearSVC(), "metadata": "{}"}, path)
    with pytest.raises(ValueError, match="unexpected objects"):
        RelevanceModel.load(path)
