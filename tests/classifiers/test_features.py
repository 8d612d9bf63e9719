"""Batch helpers of `classifiers.features` against the plain numpy they replace."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers.features import gather, known_grams, top_per_doc


@pytest.mark.parametrize("order", ["C", "F"])
def test_gather_equals_fancy_indexing(order: str) -> None:
    rng = np.random.default_rng(3)
    table = np.asfortranarray(rng.random((50, 7))) if order == "F" else rng.random((50, 7))
    rows = rng.integers(0, 50, 400)
    cols = rng.integers(0, 7, 400)
    assert np.array_equal(gather(table, rows, cols), table[rows, cols])
    # one column for all rows, negative numbers counting from the end, as `[]` does
    assert np.array_equal(gather(table, rows, -2), table[rows, -2])
    assert np.array_equal(gather(table, rows, 3), table[rows, 3])


def test_gather_of_a_strided_view_falls_back() -> None:
    table = np.arange(60.0).reshape(6, 10)[:, ::2]
    rows, cols = np.array([0, 5, 2]), np.array([4, 0, 1])
    assert np.array_equal(gather(table, rows, cols), table[rows, cols])


def test_gather_of_nothing() -> None:
    table = np.ones((4, 3), dtype=np.float32)
    out = gather(table, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert out.shape == (0,) and out.dtype == np.float32


def _known_features(groups: list[list[str]], vocab: dict[str, int]) -> tuple[list, list]:
    """What `known_grams` replaced: each group's features that `vocab` knows."""
    ids = [[vocab[f] for f in group if f in vocab] for group in groups]
    return np.cumsum([0, *map(len, ids)]).tolist(), [i for row in ids for i in row]


def test_known_grams_keeps_order_and_repeats() -> None:
    vocab = {"a": 0, "b": 1, "c": 2, "w:ab": 3, "s:b": 4}
    indptr, ids = known_grams(["a", None, "aca", "ab"], vocab, whole="", grams="", max_n=1)
    assert indptr.tolist() == [0, 1, 1, 4, 6] and ids.tolist() == [0, 0, 2, 0, 0, 1]
    indptr, ids = known_grams(["ab"], vocab, whole="w:", grams="s:", max_n=3, full=True)
    assert ids.tolist() == [3, 4]


def test_known_grams_equal_the_models_features() -> None:
    """The relevance/router features (`token_features`) and each sentiment block's
    (`_token_features`), built in Python and looked up, on real tokens."""
    from pathlib import Path

    from classifiers.models.linear import token_features
    from classifiers.models.sentiment import _BLOCK_GRAMS, _token_features
    from classifiers.tokenize import Tokenizer

    corpus = Path(__file__).resolve().parents[2] / "classifiers/data/departments/labels.jsonl"
    text = corpus.read_text(encoding="utf-8")[:20000]
    tokens = [*sorted(set(Tokenizer().tokenize(text))), "", "a", "中", "😀😀", "北京市民"]
    every = [f for t in tokens for f in token_features(t)]
    every += [f for t in tokens for fs in _token_features(t).values() for f in fs]
    vocab = {f: i for i, f in enumerate(sorted(set(every))[::3])}  # a third of them known
    for n in (1, 2, 3):
        want = _known_features([list(token_features(t, n)) for t in tokens], vocab)
        indptr, ids = known_grams(tokens, vocab, whole="", grams="", max_n=n)
        assert (indptr.tolist(), ids.tolist()) == want
    for block, kw in _BLOCK_GRAMS.items():
        want = _known_features([_token_features(t)[block] for t in tokens], vocab)
        indptr, ids = known_grams(tokens, vocab, **kw)
        assert (indptr.tolist(), ids.tolist()) == want, block


def test_known_grams_checks_its_input() -> None:
    with pytest.raises(TypeError):
        known_grams([b"x"], {}, whole="", grams="")  # type: ignore[list-item]
    with pytest.raises(TypeError):
        known_grams(["x"], {"x": "not an id"}, whole="", grams=None)


def test_top_per_doc_strongest_first_within_each_doc() -> None:
    doc = np.array([0, 0, 0, 1, 1, 2])
    value = np.array([0.1, 0.9, 0.5, 0.3, 0.7, 0.2])
    top = top_per_doc(doc, value, 2)
    assert list(zip(doc[top].tolist(), value[top].tolist(), strict=True)) == [
        (0, 0.9),
        (0, 0.5),
        (1, 0.7),
        (1, 0.3),
        (2, 0.2),
    ]
