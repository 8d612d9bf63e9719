"""The C loops of `classifiers._native` against the plain Python they replace."""

from __future__ import annotations

import json
from itertools import chain, filterfalse
from pathlib import Path

import numpy as np
import pytest

from classifiers import _native
from classifiers.features import TokenIndex
from classifiers.tokenize import Tokenizer, drop_arguments

CORPUS = Path(__file__).resolve().parents[2] / "classifiers/data/departments/labels.jsonl"


@pytest.fixture(scope="module")
def raw_cuts() -> list[list[str]]:
    """The segmenter's output for 300 real sentences, spaces and punctuation included."""
    tokenizer = Tokenizer(Path(__file__).resolve().parents[2] / "config/lexicon")
    lines = CORPUS.read_text(encoding="utf-8").splitlines()[:300]
    return [tokenizer.cut(json.loads(line)["text"]) for line in lines]


def test_drop_equals_filterfalse(raw_cuts: list[list[str]]) -> None:
    drop = frozenset({"，", "。", "的", " ", "了", "我们", "\r\n", "😀", "\U0010ffff"})
    args = drop_arguments(drop)
    cuts = [*raw_cuts, ["我们", "😀", "\U0010ffff", "\r\n", "\r", "", "我"]]
    for cut in cuts:
        assert _native.drop(cut, *args) == list(filterfalse(drop.__contains__, cut))
    assert _native.drop([], *args) == []
    assert _native.drop(["a", "b"], *drop_arguments(frozenset())) == ["a", "b"]


def test_drop_refuses_other_types() -> None:
    chars, words = drop_arguments(frozenset({"a"}))
    with pytest.raises(TypeError):
        _native.drop(("a",), chars, words)
    with pytest.raises(TypeError):
        _native.drop(["a"], chars, {"a": 1})
    with pytest.raises(TypeError):
        _native.drop(["a"], chars)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        _native.drop(["a"], b"\x00", words)
    # an unhashable token is the set's TypeError, not a crash
    with pytest.raises(TypeError):
        _native.drop([["a"]], chars, frozenset({"ab"}))


def _python_lookup(docs: list[list[str]], index: dict[str, int], words: list[str]):
    ids = []
    for token in chain.from_iterable(docs):
        if token not in index:
            index[token] = len(words)
            words.append(token)
        ids.append(index[token])
    return ids, np.cumsum([0, *map(len, docs)]).tolist()


def test_lookup_equals_python(raw_cuts: list[list[str]]) -> None:
    index: dict[str, int] = {"已知": 0}
    words = ["已知"]
    ids, indptr = _native.lookup(raw_cuts, index, words)
    ref_index, ref_words = {"已知": 0}, ["已知"]
    ref_ids, ref_indptr = _python_lookup(raw_cuts, ref_index, ref_words)
    assert np.frombuffer(ids, dtype=np.int64).tolist() == ref_ids
    assert np.frombuffer(indptr, dtype=np.int64).tolist() == ref_indptr
    assert index == ref_index and words == ref_words
    # a second pass adds nothing and gives the same ids
    again, _ = _native.lookup(raw_cuts, index, words)
    assert again == ids and len(words) == len(ref_words)


def test_lookup_of_empty_docs_and_tuples() -> None:
    index: dict[str, int] = {}
    words: list[str] = []
    ids, indptr = _native.lookup([(), ("甲", "乙", "甲"), []], index, words)
    assert np.frombuffer(ids, dtype=np.int64).tolist() == [0, 1, 0]
    assert np.frombuffer(indptr, dtype=np.int64).tolist() == [0, 0, 3, 3]
    ids, indptr = _native.lookup([], index, words)
    assert ids == b"" and np.frombuffer(indptr, dtype=np.int64).tolist() == [0]


def test_lookup_refuses_a_non_string_token_and_keeps_the_index_consistent() -> None:
    index: dict[str, int] = {}
    words: list[str] = []
    with pytest.raises(TypeError, match="tokens must be str"):
        _native.lookup([["甲", 3]], index, words)
    assert index == {"甲": 0} and words == ["甲"]
    with pytest.raises(TypeError):
        _native.lookup([["甲"]], [], words)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sequence"):
        _native.lookup([5], index, words)  # type: ignore[list-item]

    class Sneaky(str):
        def __hash__(self) -> int:  # would run Python code inside the C loop
            return 0

    with pytest.raises(TypeError, match="tokens must be str, not Sneaky"):
        _native.lookup([[Sneaky("乙")]], index, words)


def test_drop_survives_a_token_that_empties_the_list() -> None:
    tokens: list[object] = []

    class Emptying(str):
        def __hash__(self) -> int:
            tokens.clear()
            return 0

    tokens.extend([Emptying("ab"), "b", "c"])
    assert _native.drop(tokens, *drop_arguments(frozenset({"xy"}))) == ["ab"]


def test_token_index_starts_over_past_its_bound() -> None:
    index = TokenIndex(max_tokens=3)
    first = index.lookup([["a", "b", "c", "d"]])
    assert first.ids.tolist() == [0, 1, 2, 3] and first.generation == 0
    second = index.lookup([["d", "e"]])
    assert second.generation == 1 and second.ids.tolist() == [0, 1]
    assert index.words == ["d", "e"]


def _argsort_top_per_doc(doc: np.ndarray, value: np.ndarray, k: int) -> np.ndarray:
    """The numpy formulation `top_per_doc` replaced: a stable argsort, then ranks."""
    order = np.argsort(doc + 1.0 / (1.0 + value), kind="stable")
    d = doc[order]
    rank = np.arange(len(d)) - np.searchsorted(d, d)
    return order[rank < k]


@pytest.mark.parametrize("k", [0, 1, 3, 50])
def test_top_per_doc_equals_the_stable_argsort(k: int) -> None:
    rng = np.random.default_rng(k)
    doc = rng.integers(0, 40, 3000)  # unsorted, as the head n-grams come
    value = rng.choice([0.5, 1.0, 2.0], 3000) * rng.integers(1, 4, 3000)  # many ties
    top = _native.top_per_doc(doc, value, k)
    assert (
        np.frombuffer(top, dtype=np.int64).tolist() == _argsort_top_per_doc(doc, value, k).tolist()
    )
    assert _native.top_per_doc(np.zeros(0, np.int64), np.zeros(0), 3) == b""
    with pytest.raises(ValueError, match="doc out of range"):
        _native.top_per_doc(np.array([-1]), np.array([1.0]), 3)
    with pytest.raises(TypeError, match="float64"):
        _native.top_per_doc(doc, value.astype(np.float32), k)


def _python_top_terms(ids, indptr, norms, rows, cols, sign, k, share, words):
    """The numpy formulation `ScoredBatch.top_terms` replaced."""
    n = len(indptr) - 1
    counts = np.diff(indptr)
    doc = np.repeat(np.arange(n), counts)
    contrib = rows[ids, cols[doc]] * (sign / norms)[doc]
    top = np.zeros(n)
    nonempty = counts > 0
    top[nonempty] = np.maximum.reduceat(contrib, indptr[:-1][nonempty])
    keep = (contrib > 0) & (contrib >= share * top[doc])
    doc, ids, contrib = doc[keep], ids[keep], contrib[keep]
    _, first, times = np.unique(doc * len(rows) + ids, return_index=True, return_counts=True)
    doc, ids, contrib = doc[first], ids[first], contrib[first] * times
    chosen = _argsort_top_per_doc(doc, contrib, k)
    out: list[list[tuple[str, float]]] = [[] for _ in range(n)]
    picked = zip(doc[chosen].tolist(), ids[chosen].tolist(), contrib[chosen].tolist(), strict=True)
    for d, i, c in picked:
        out[d].append((words[i], c))
    return out


@pytest.mark.parametrize("share", [0.0, 0.2, 0.9])
def test_top_terms_equals_numpy(share: float) -> None:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(300, 6)).astype(np.float32)
    rows[:50] = 0.5  # equal rows: ties broken by token id
    lens = rng.integers(0, 60, 200)
    lens[3] = 0
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    ids = rng.integers(0, 300, int(indptr[-1])).astype(np.int64)
    norms = rng.uniform(0.5, 3.0, 200)
    cols = rng.integers(0, 6, 200).astype(np.int64)
    sign = rng.choice([-1.0, 1.0], 200)
    words = [f"w{i}" for i in range(300)]
    args = (ids, indptr, norms, rows, cols, sign, 5, share, words)
    assert _native.top_terms(*args) == _python_top_terms(*args)


def test_top_terms_checks_its_arrays() -> None:
    ids, indptr = np.array([0, 7]), np.array([0, 2])
    rows = np.ones((3, 2), dtype=np.float32)
    ok = (np.ones(1), rows, np.zeros(1, np.int64), np.ones(1), 3, 0.2, ["a", "b", "c"])
    with pytest.raises(IndexError, match="token id"):
        _native.top_terms(ids, indptr, *ok)
    with pytest.raises(IndexError, match="column"):
        _native.top_terms(np.array([0]), np.array([0, 1]), np.ones(1), rows,
                          np.array([2]), np.ones(1), 3, 0.2, ["a"])  # fmt: skip
    with pytest.raises(TypeError, match="float32"):
        _native.top_terms(np.array([0]), np.array([0, 1]), np.ones(1), rows.astype(float),
                          np.array([0]), np.ones(1), 3, 0.2, ["a"])  # fmt: skip


def test_sentiment_tokens_checks_its_input() -> None:
    ids, indptr = np.array([0, 1]), np.array([0, 2])
    table = np.zeros((2, 23))
    scores, doc, token, explain = _native.sentiment_tokens(ids, indptr, ["标题"], table, 600)
    assert np.frombuffer(scores).tolist() == [0.0] * 9  # no weights: zero scores
    assert doc == token == explain == b""  # nothing may be shown
    with pytest.raises(ValueError, match="do not fit"):
        _native.sentiment_tokens(ids, indptr, ["标题"], np.zeros((2, 22)), 600)
    with pytest.raises(ValueError, match="do not fit"):
        _native.sentiment_tokens(ids, indptr, [], table, 600)
    with pytest.raises(TypeError, match="heads must be str"):
        _native.sentiment_tokens(ids, indptr, [None], table, 600)
    with pytest.raises(IndexError, match="token id"):
        _native.sentiment_tokens(np.array([0, 2]), indptr, ["标题"], table, 600)
    with pytest.raises(ValueError, match="indptr"):
        _native.sentiment_tokens(ids, np.array([0, 3]), ["标题"], table, 600)
    with pytest.raises(TypeError, match="expected sentiment_tokens"):
        _native.sentiment_tokens(ids, indptr, ("标题",), table, 600)


def _chars_by_regex(text: str) -> tuple[str, bool]:
    """What `clean` did before `_native.chars`: a regex drop of the symbols, the
    full-width runs translated, then the traditional-only test."""
    import re

    from classifiers import text as t

    astral = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in t._SYMBOLS_ASTRAL)
    text = re.sub("[" + t._SYMBOLS_BMP + astral + "]+", "", text)
    text = t._half_width(text)
    return text, t.has_traditional(text)


def test_chars_equals_the_regexes() -> None:
    """Every BMP character and a sample of the astral planes, alone and in mixed
    random texts (Chinese, full-width, traditional, emoji, controls, surrogates)."""
    import random

    from classifiers.text import _char_table

    table = _char_table()
    singles = [chr(cp) for cp in range(0x10000)]
    singles += [chr(cp) for cp in range(0x10000, 0x110000, 97)]
    for ch in singles:
        assert _native.chars(ch, table) == _chars_by_regex(ch), hex(ord(ch))
    rng = random.Random(7)
    pool = "政府應該儘快解決环境噪声扬尘１２３ＡＢＣ，！？：；（）"
    pool += "\u3000 \t\n\r\x00\u200b😀🚗\ud800ab12"
    for _ in range(2000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
        assert _native.chars(text, table) == _chars_by_regex(text), repr(text)
    plain = "区政府回应占道经营问题"
    assert _native.chars(plain, table)[0] is plain  # nothing to change: the same object


def test_chars_checks_its_table() -> None:
    with pytest.raises(ValueError):
        _native.chars("abc", b"\x00" * 10)
    with pytest.raises(TypeError):
        _native.chars(b"abc", b"\x00" * 0x110000)


def _head_grams_by_numpy(texts: list[str], ngram: int, bits: int) -> tuple[np.ndarray, ...]:
    """The numpy code `head_grams` replaced: code points of the NUL-joined texts,
    n-gram keys packed 21 bits a character, multiplicative hash to `bits` bits."""
    lens = np.array([len(t) for t in texts], dtype=np.int64)
    joined = "\x00".join(texts)
    cp = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    doc = np.repeat(np.arange(len(texts)), lens + 1)[: len(cp)]
    offsets = np.concatenate([[0], np.cumsum(lens + 1)])
    docs, keys, starts, sizes = [], [], [], []
    for n in range(1, ngram + 1):
        m = len(cp) - n + 1
        if m <= 0:
            break
        k = cp[:m].copy()
        ok = k != 0
        for j in range(1, n):
            c = cp[j : m + j]
            k = (k << np.uint64(21)) | c
            ok &= c != 0
        where = np.flatnonzero(ok)
        keys.append(k[ok])
        docs.append(doc[:m][ok])
        starts.append(where - offsets[doc[:m][ok]])
        sizes.append(np.full(len(where), n, dtype=np.int64))
    mult = np.uint64(0x9E3779B97F4A7C15)
    bucket = ((np.concatenate(keys) * mult) >> np.uint64(64 - bits)).astype(np.int64)
    return np.concatenate(docs), bucket, np.concatenate(starts), np.concatenate(sizes)


def test_head_grams_equal_numpy(raw_cuts: list[list[str]]) -> None:
    import random

    heads = ["".join(cut)[:64] for cut in raw_cuts]
    rng = random.Random(3)
    pool = "政府回应ab1 \x00😀\U0010ffff"
    heads += ["".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) for _ in range(300)]
    heads += ["", "a", "ab", "\x00", "😀😀😀"]
    for ngram, bits in ((3, 20), (1, 5), (2, 63)):
        got = [np.frombuffer(b, dtype=np.int64) for b in _native.head_grams(heads, ngram, bits)]
        want = _head_grams_by_numpy(heads, ngram, bits)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    assert [len(b) for b in _native.head_grams([], 3, 20)] == [0, 0, 0, 0]


def test_head_grams_checks_its_input() -> None:
    with pytest.raises(TypeError):
        _native.head_grams(("a",), 3, 20)
    with pytest.raises(TypeError):
        _native.head_grams([b"a"], 3, 20)
    with pytest.raises(ValueError):
        _native.head_grams(["a"], 4, 20)
    with pytest.raises(ValueError):
        _native.head_grams(["a"], 3, 64)


def test_sentiment_terms_refuses_arrays_that_do_not_fit() -> None:
    """Bad arguments give an error, never a read out of bounds (the equality with the
    Python selection is tested in models/test_sentiment.py)."""
    z = np.zeros(0, np.int64)
    one = np.zeros(1, np.int64)
    table = np.ones((4, 4))
    args = [z, z, np.zeros((0, 3)), one, z, z, table, np.ones(1), z, z, np.eye(3)]
    tail = (5, [], ["好"], frozenset())
    assert _native.sentiment_terms(*args, *tail) == [[]]
    with pytest.raises(IndexError):  # a token id past the words
        _native.sentiment_terms(one, one, np.ones((1, 3)), *args[3:], *tail)
    gram = [one, one, table, np.ones(1), one, np.full(1, 3), np.eye(3)]
    with pytest.raises(IndexError):  # an n-gram past the end of its head
        _native.sentiment_terms(*args[:4], *gram, *tail)
    gram = [one, np.full(1, 4), table, np.ones(1), one, np.ones(1, np.int64), np.eye(3)]
    with pytest.raises(IndexError):  # a bucket past the table
        _native.sentiment_terms(*args[:4], *gram, *tail)
    with pytest.raises(ValueError, match="do not fit"):
        _native.sentiment_terms(*args[:10], np.eye(2), *tail)
    with pytest.raises(ValueError, match="bad class"):
        _native.sentiment_terms(*args[:3], np.full(1, 3), *args[4:], *tail)
    with pytest.raises(TypeError):
        _native.sentiment_terms(*args[:2], np.zeros((0, 3), np.float32), *args[3:], *tail)


def test_head_sums_equal_bincount() -> None:
    rng = np.random.default_rng(3)
    table = rng.normal(size=(64, 4))
    table[:, 3] = np.abs(table[:, 3])
    table[7, 3] = 0.0
    doc = np.sort(rng.integers(0, 40, 5000))
    doc[doc == 5] = 6  # a head without n-grams
    bucket = rng.integers(0, 64, 5000)
    bucket[doc == 9] = 7  # a head whose n-grams all weigh 0
    sums, norm = _native.head_sums(doc, bucket, table, 41)
    g = np.take(table, bucket, axis=0)
    expected = np.stack([np.bincount(doc, weights=g[:, j], minlength=41) for j in range(3)], 1)
    expected_norm = np.sqrt(np.bincount(doc, weights=g[:, 3], minlength=41))
    expected_norm[expected_norm == 0] = 1.0
    assert np.array_equal(np.frombuffer(sums).reshape(-1, 3), expected)
    assert np.array_equal(np.frombuffer(norm), expected_norm)
    with pytest.raises(IndexError):
        _native.head_sums(doc, bucket + 64, table, 41)
    with pytest.raises(IndexError):
        _native.head_sums(doc, bucket, table, int(doc.max()))
    with pytest.raises(ValueError, match="do not fit"):
        _native.head_sums(doc, bucket[:-1], table, 41)
