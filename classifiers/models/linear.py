"""Linear models over token subword features, shared by relevance and department routing.

Every token of the shared tokenizer expands into the word itself plus the character
1-3-grams inside it ("黑臭水体治理" → 黑臭水体治理, 黑, 臭, …, 黑臭, 臭水, …, 黑臭水, …). The
user dictionary makes compound tokens such as 黑臭水体治理 or 噪声扰民 that a word-only
model has rarely seen; their inner n-grams carry what the model learned from 黑臭 or 噪声.
On the department corpus (5-fold CV on train) this matches character 1-3-gram TF-IDF
(0.78 top-1) where plain words reach 0.67, at a fraction of the cost: n-grams never cross
token boundaries, so each *token* has a fixed feature set.

That is what makes inference cheap. Features are weighted by idf and the vector is
divided by the root of the summed squared idf of its feature occurrences (an l2 norm
that counts a repeated feature once per occurrence, so it decomposes over tokens). A
linear score is then a sum of per-token rows: the first time a model sees a token, its
features' ``idf × coef`` are summed once into the model's row for that token; after
that a post costs a sparse-times-dense product over its token ids. The ids come from
one `TokenIndex` per process (`SHARED_TOKENS`): the dict lookup per token, the only
per-token Python step, can be done once per batch (`token_ids`) and the resulting
`TokenIds` passed to every model instead of the token lists. Stopwords, punctuation and
numbers have no features, so a tokenizer that keeps or drops them gives the same scores.

Cost on 300-character posts (143 tokens), batches of 1,000, CPU time on the shared
2-core development machine while other sessions loaded it (the tokenizer measured 56 µs
per post in the same run): token-id lookup 14 µs (once for all models); relevance 0.7
µs, 6.5 µs with explanations; router 1.5 µs, 6 µs with the lexicon rules (one
term search), 17.5 µs for `route` with explanations. A token a model has not seen
before costs it ~1.5 µs once (its features looked up in C: `features.known_grams`).

Artifacts: `save_state` writes a plain dict of numpy arrays, strings and numbers with
skops; `load_state` refuses any type beyond skops' defaults.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from classifiers import _native
from classifiers.features import (
    SHARED_TOKENS,
    TokenIds,
    TokenIndex,
    Tokens,
    known_grams,
    new_token_chunks,
    token_ids,
)

__all__ = [
    "FORMAT_VERSION",
    "TRUSTED_TYPES",
    "ScoredBatch",
    "SubwordLinear",
    "SubwordVocabulary",
    "default_stopwords",
    "digest",
    "load_state",
    "save_state",
    "token_features",
]

FORMAT_VERSION = 1

# skops.io types the artifacts may contain beyond skops' defaults. The state is a plain
# dict of numpy arrays, strings and numbers, all trusted by default, so the list is
# empty; `load_state` refuses a file holding anything else.
TRUSTED_TYPES: list[str] = []


# ---------------------------------------------------------------------- features ------


@lru_cache(maxsize=8192)
def token_features(token: str, max_ngram: int = 3) -> tuple[str, ...]:
    """The token and the character n-grams inside it (n = 1 .. min(max_ngram, len-1)).

    Cached: the models meet a new token one after the other within a batch, and this
    is most of what a new token costs them."""
    out = [token]
    n = len(token)
    for k in range(1, min(max_ngram, n - 1) + 1):
        out.extend(token[i : i + k] for i in range(n - k + 1))
    return tuple(out)


def _skip(token: str, stopwords: frozenset[str]) -> bool:
    """No features for stopwords and for tokens without a letter (numbers, symbols)."""
    return token in stopwords or not any(map(str.isalpha, token))


def default_stopwords() -> frozenset[str]:
    """The tokenizer's stopword list (stopwords-iso); saved with each model."""
    from classifiers.tokenize import chinese_stopwords

    return chinese_stopwords()


@dataclass
class SubwordVocabulary:
    """Subword features with their idf, fitted on tokenized training texts.

    `transform` gives the training matrix; `SubwordLinear` reproduces ``X @ coef``
    token by token at inference (the module docstring explains the normalisation).
    """

    features: list[str]
    idf: np.ndarray
    stopwords: frozenset[str]
    max_ngram: int = 3

    @classmethod
    def fit(
        cls,
        tokens: Sequence[Sequence[str]],
        *,
        min_df: int = 2,
        max_ngram: int = 3,
        stopwords: frozenset[str] | None = None,
    ) -> SubwordVocabulary:
        stop = default_stopwords() if stopwords is None else stopwords
        df: dict[str, int] = {}
        for doc in tokens:
            seen = {f for t in doc if not _skip(t, stop) for f in token_features(t, max_ngram)}
            for f in seen:
                df[f] = df.get(f, 0) + 1
        features = sorted(f for f, c in df.items() if c >= min_df)
        n = len(tokens)
        idf = np.array([np.log((1 + n) / (1 + df[f])) + 1.0 for f in features])
        return cls(features, idf, stop, max_ngram)

    def transform(self, tokens: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Training matrix: idf per feature occurrence, rows divided by the occurrence norm."""
        vocab = {f: i for i, f in enumerate(self.features)}
        cols: list[int] = []
        indptr = [0]
        for doc in tokens:
            for t in doc:
                if not _skip(t, self.stopwords):
                    cols.extend(vocab[f] for f in token_features(t, self.max_ngram) if f in vocab)
            indptr.append(len(cols))
        idx = np.asarray(cols, dtype=np.int64)
        data = self.idf[idx]
        ptr = np.asarray(indptr, dtype=np.int64)
        sq = np.add.reduceat(np.append(data * data, 0.0), ptr[:-1]) * (np.diff(ptr) > 0)
        norms = np.sqrt(sq)
        norms[norms == 0] = 1.0
        data = data / np.repeat(norms, np.diff(ptr))
        x = sp.csr_matrix((data, idx, ptr), shape=(len(tokens), len(self.features)))
        x.sum_duplicates()
        return x


class SubwordLinear:
    """A linear model over `SubwordVocabulary` features, scored token by token.

    ``decision(tokens)`` equals ``scale * (vocab.transform(tokens) @ coef + intercept)``
    (to float32 rounding of the per-token rows). Row t of the model's table holds, for
    token id t of the shared `TokenIndex`, the summed ``idf × coef × scale`` of the
    token's features and, in the last column, their summed squared idf; rows are
    computed the first time a token id is seen. Predicting from several threads is
    safe (rows are filled under a lock).
    """

    def __init__(
        self,
        features: Sequence[str] | np.ndarray,
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        stopwords: Iterable[str],
        *,
        max_ngram: int = 3,
        scale: float = 1.0,
        tokens: TokenIndex | None = None,
    ):
        self.features = np.asarray(features, dtype=str)
        self.vocab: dict[str, int] = {f: i for i, f in enumerate(self.features.tolist())}
        self.idf = np.asarray(idf, dtype=np.float64)
        # Coefficients are kept at float32 precision (as saved), so a loaded model
        # scores exactly like the one that was trained.
        coef = np.asarray(coef, dtype=np.float32).astype(np.float64)
        self.coef = coef.reshape(len(self.features), -1)
        self.intercept = np.asarray(intercept, dtype=np.float64).reshape(-1)
        self.stopwords = frozenset(stopwords)
        self.max_ngram = max_ngram
        self.scale = float(scale)
        self.tokens = SHARED_TOKENS if tokens is None else tokens
        self._lock = threading.Lock()
        self.reset_cache()

    @classmethod
    def from_vocabulary(
        cls, vocab: SubwordVocabulary, coef: np.ndarray, intercept: np.ndarray, **kw: Any
    ) -> SubwordLinear:
        return cls(
            vocab.features, vocab.idf, coef, intercept, vocab.stopwords,
            max_ngram=vocab.max_ngram, **kw,
        )  # fmt: skip

    def reset_cache(self) -> None:
        """Forget the per-token rows (they are recomputed on demand)."""
        k = self.coef.shape[1]
        with self._lock:
            self._rows = np.zeros((1024, k + 1), dtype=np.float32)
            self._filled = np.zeros(1024, dtype=bool)
            self._generation = -1

    def set_scale(self, scale: float) -> None:
        self.scale = float(scale)
        self.reset_cache()

    def _fill(self, tids: TokenIds) -> np.ndarray:
        """The row table, with a row for every id of `tids` (caller holds the lock)."""
        if self._generation != tids.generation:
            self._filled[:] = False
            self._generation = tids.generation
        words = tids.index.words
        if len(words) > len(self._filled):
            size = max(len(words), 2 * len(self._filled))
            rows = np.zeros((size, self._rows.shape[1]), dtype=np.float32)
            rows[: len(self._rows)] = self._rows
            filled = np.zeros(size, dtype=bool)
            filled[: len(self._filled)] = self._filled
            self._rows, self._filled = rows, filled
        if len(tids.ids) and not self._filled[tids.ids].all():
            for new in new_token_chunks(np.unique(tids.ids[~self._filled[tids.ids]])):
                self._fill_rows(new, words)
        return self._rows

    def _fill_rows(self, new: np.ndarray, words: list[str]) -> None:
        """Rows for the token ids `new` (caller holds the lock)."""
        stop = self.stopwords
        tokens = [None if _skip(t, stop) else t for t in map(words.__getitem__, new.tolist())]
        # `token_features` of each, looked up in C
        ptr, idx = known_grams(tokens, self.vocab, whole="", grams="", max_n=self.max_ngram)
        w = self.idf[idx]
        x = sp.csr_matrix((w, idx, ptr), shape=(len(new), len(self.features)))
        self._rows[new, :-1] = (x @ self.coef) * self.scale
        # squared idf per feature *occurrence* (a repeated n-gram counts twice)
        owner = np.repeat(np.arange(len(new)), np.diff(ptr))
        self._rows[new, -1] = np.bincount(owner, weights=w * w, minlength=len(new))
        self._filled[new] = True

    def _score(self, tokens: Tokens) -> tuple[np.ndarray, ScoredBatch]:
        tids = token_ids(tokens, self.tokens)
        with self._lock:
            rows = self._fill(tids)
        ids, indptr = tids.ids, tids.indptr
        n = len(indptr) - 1
        x = sp.csr_matrix((np.ones(len(ids), dtype=np.float32), ids, indptr), shape=(n, len(rows)))
        acc = (x @ rows).astype(np.float64)
        norms = np.sqrt(acc[:, -1])
        norms[norms == 0] = 1.0
        z = acc[:, :-1] / norms[:, None] + self.intercept * self.scale
        return z, ScoredBatch(ids, indptr, norms, rows, tids.index.words)

    def decision(self, tokens: Tokens) -> np.ndarray:
        """Scaled linear scores, shape (n_posts, K)."""
        return self._score(tokens)[0]

    # ------------------------------------------------------------ persistence ------
    def state(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "idf": self.idf,
            "coef": self.coef.astype(np.float32),
            "intercept": self.intercept,
            "stopwords": np.asarray(sorted(self.stopwords), dtype=str),
            "max_ngram": self.max_ngram,
            "scale": self.scale,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SubwordLinear:
        return cls(
            state["features"], state["idf"], state["coef"], state["intercept"],
            state["stopwords"].tolist(), max_ngram=int(state["max_ngram"]),
            scale=float(state["scale"]),
        )  # fmt: skip


@dataclass
class ScoredBatch:
    """What `_score` found out about a batch, reused by explanations."""

    ids: np.ndarray  # token id of each occurrence, posts concatenated
    indptr: np.ndarray  # post i's occurrences are ids[indptr[i]:indptr[i+1]]
    norms: np.ndarray  # per post
    rows: np.ndarray  # the model's token rows at scoring time
    words: list[str]  # token id -> token

    def top_terms(
        self, cols: np.ndarray, sign: np.ndarray, k: int, share: float = 0.2
    ) -> list[list[tuple[str, float]]]:
        """Per post, up to k tokens that added most to column `cols[i]` times `sign[i]`.

        A token's weight is its row's (scaled) score divided by the post's norm, times
        how often it occurs. Only tokens that pushed towards the decision by at least
        `share` of the strongest single push are listed: weaker ones explain nothing.
        Selected in C (`classifiers._native.top_terms`), ties by token id.
        """
        return _native.top_terms(
            self.ids,
            self.indptr,
            self.norms,
            self.rows,
            np.ascontiguousarray(cols, dtype=np.int64),
            np.ascontiguousarray(sign, dtype=np.float64),
            k,
            share,
            self.words,
        )


# ---------------------------------------------------------------------- persistence ---


def save_state(path: Path | str, state: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Write `state` with skops.io and `metadata` as JSON next to it (same stem, .json)."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump({**state, "metadata": json.dumps(metadata, ensure_ascii=False)}, path)
    path.with_suffix(".json").write_text(
        json.dumps(metadata, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )


def load_state(path: Path | str, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a `save_state` file, trusting only skops' defaults and `TRUSTED_TYPES`."""
    import skops.io as sio

    untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    if untrusted:
        raise ValueError(f"{path}: refusing to load untrusted types {untrusted}")
    state = sio.load(path, trusted=TRUSTED_TYPES)
    if not _plain(state):
        # skops trusts scikit-learn estimators by default; our states never hold one
        raise ValueError(f"{path}: unexpected objects in the model state")
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise ValueError(f"{path}: not a {kind} model")
    if int(state.get("format", -1)) != FORMAT_VERSION:
        raise ValueError(f"{path}: model format {state.get('format')}, expected {FORMAT_VERSION}")
    return state, json.loads(state.pop("metadata"))


def _plain(value: Any) -> bool:
    """Only dicts, lists, tuples, strings, numbers, None and non-object numpy arrays."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.dtype != object
    return value is None or isinstance(value, str | int | float | bool | np.generic)


def digest(items: Iterable[str]) -> str:
    """sha256 of a sequence of strings (training texts and labels), for metadata."""
    h = hashlib.sha256()
    for s in items:
        h.update(s.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()
