"""Token ids shared by every model of a process, and batch selection helpers.

Looking tokens up in a dict is the one per-token step every model needs; `token_ids`
does it once per batch (in C: `classifiers._native.lookup`), or the native tokenizer in
its segmentation pass (`Tokenizer.tokenize_with_ids`, through `TokenIndex.assign`), and
every model reads the same `TokenIds`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from classifiers import _native

__all__ = [
    "SHARED_TOKENS",
    "TokenIds",
    "TokenIndex",
    "Tokens",
    "gather",
    "known_grams",
    "new_token_chunks",
    "token_ids",
    "top_per_doc",
]


class TokenIndex:
    """Token → integer id, shared by the models of a process (`SHARED_TOKENS`).

    Looking tokens up in a dict is the one per-token step every model needs; done
    once per batch (`lookup`, a loop in C) and passed to every model as `TokenIds`, it is not
    repeated per model. Ids are dense and only grow; past `max_tokens` distinct tokens
    the index starts over (a new `generation`) and the models refill their rows: a
    bounded cache whose state never changes a result.
    """

    def __init__(self, max_tokens: int = 200_000):
        self.max_tokens = max_tokens
        self.lock = threading.Lock()
        self.generation = 0
        self.index: dict[str, int] = {}
        self.words: list[str] = []

    def lookup(self, tokens: Sequence[Sequence[str]]) -> TokenIds:
        """The ids of a batch of token lists."""
        ids, _ = self.assign(lambda index, words: _native.lookup(tokens, index, words))
        return ids

    def assign(
        self, look: Callable[[dict[str, int], list[str]], tuple[Any, ...]]
    ) -> tuple[TokenIds, tuple[Any, ...]]:
        """Ids made by `look(index, words)`, which returns (ids, indptr, *rest) as
        `_native.lookup` does, adding the tokens it meets; it runs under the lock, after
        the index has started over if it was full. Returns the ids and the rest."""
        with self.lock:
            if len(self.index) > self.max_tokens:
                self.index, self.words = {}, []
                self.generation += 1
            ids, indptr, *rest = look(self.index, self.words)
            token_ids = TokenIds(
                np.frombuffer(ids, dtype=np.int64),
                np.frombuffer(indptr, dtype=np.int64),
                self,
                self.generation,
            )
            return token_ids, tuple(rest)


@dataclass(frozen=True)
class TokenIds:
    """A batch's token ids (posts concatenated; post i is ``ids[indptr[i]:indptr[i+1]]``)."""

    ids: np.ndarray
    indptr: np.ndarray
    index: TokenIndex
    generation: int

    def __len__(self) -> int:
        return len(self.indptr) - 1


SHARED_TOKENS = TokenIndex()

Tokens = Sequence[Sequence[str]] | TokenIds


def token_ids(tokens: Tokens, index: TokenIndex | None = None) -> TokenIds:
    """`tokens` as `TokenIds` of `index` (default `SHARED_TOKENS`); ids already made
    by that index in its current generation are passed through."""
    index = SHARED_TOKENS if index is None else index
    if isinstance(tokens, TokenIds):
        if tokens.index is index and tokens.generation == index.generation:
            return tokens
        raise ValueError("token ids from another index or an older generation: look up again")
    return index.lookup(tokens)


#: New tokens are turned into model rows this many at a time: a cold process meets tens of
#: thousands in its first batches, and their features at once would cost ~25 MB more peak.
NEW_TOKEN_CHUNK = 2048


def new_token_chunks(ids: np.ndarray) -> list[np.ndarray]:
    """`ids` (sorted, distinct) in pieces of at most `NEW_TOKEN_CHUNK`."""
    return [ids[i : i + NEW_TOKEN_CHUNK] for i in range(0, len(ids), NEW_TOKEN_CHUNK)]


def known_grams(
    tokens: list[str | None],
    vocab: dict[str, int],
    *,
    whole: str | None,
    grams: str | None,
    max_n: int = 3,
    full: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, ids): the ids of the features of each token that `vocab` knows, in
    order, repeats kept (token i's are ``ids[indptr[i]:indptr[i+1]]``). A token's
    features: `whole` + the token (unless None), then `grams` + its character n-grams,
    n = 1 .. `max_n`, shorter first (unless None), the token itself among them only
    when `full`; a None token has none.

    How a model turns the tokens it has not met yet into feature rows, all of a batch
    at once. In C (`_native.known_grams`): building and looking up the features in
    Python cost the models ~20 µs a new token, and a fresh process meets thousands."""
    indptr, ids = _native.known_grams(tokens, vocab, whole, grams, max_n, full)
    return np.frombuffer(indptr, dtype=np.int64), np.frombuffer(ids, dtype=np.int64)


def gather(table: np.ndarray, rows: np.ndarray, cols: np.ndarray | int) -> np.ndarray:
    """``table[rows, cols]`` of a contiguous 2-D table (C or Fortran order) through one
    flat `np.take`: numpy's fancy indexing by a pair of index arrays (or a row gather
    ``table[rows]``) goes through its general indexing machinery and costs 4-6 times as
    much on the batch sizes here (benchmarks/classify.py)."""
    n, m = table.shape
    cols = np.asarray(cols) % m  # negative column numbers count from the end, as in [ ]
    if table.flags.c_contiguous:
        return np.take(table.reshape(-1), rows * m + cols)
    if table.flags.f_contiguous:
        return np.take(table.reshape(-1, order="F"), cols * n + rows)
    return table[rows, cols]


def top_per_doc(doc: np.ndarray, value: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` largest positive `value`s of each doc, by doc, strongest first.

    The order of a stable argsort of ``doc + 1/(1+value)`` (values are positive, so the
    fraction lies in (0, 1)): by doc, then by value descending, equal values in input
    order. A selection in C (`classifiers._native.top_per_doc`), O(n·k) where the
    argsort it replaced cost 4-5 µs a post in the sentiment explanations.
    """
    if not len(doc):
        return np.zeros(0, dtype=np.int64)
    top = _native.top_per_doc(
        np.ascontiguousarray(doc, dtype=np.int64),
        np.ascontiguousarray(value, dtype=np.float64),
        k,
    )
    return np.frombuffer(top, dtype=np.int64)
