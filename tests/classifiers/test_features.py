"""Batch helpers of `classifiers.features` against the plain numpy they replace."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers.features import gather, known_features, top_per_doc


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


def test_known_features_keeps_order_and_repeats() -> None:
    vocab = {"a": 0, "b": 1, "c": 2}
    indptr, ids = known_features([["a", "x", "a"], [], ["c", "b", "zz"]], vocab)
    assert indptr.tolist() == [0, 2, 2, 4]
    assert ids.tolist() == [0, 0, 2, 1]


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
