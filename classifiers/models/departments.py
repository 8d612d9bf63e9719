"""Department routing: which departments of the catalogue should handle a post.

Model
-----
A linear SVM (one-vs-rest, `LinearSVC`) over the subword features of
`classifiers.models.relevance` (tokens plus the character 1-3-grams inside them), scored
token by token through a per-token table, so routing a post costs a dict lookup per
token and a sparse product (`SubwordLinear`). Training data: the department corpus's
``train`` split (``classifiers/data/departments``), plus two kinds of one-line
pseudo-documents from configuration, always in training and never scored in CV: each
department's name and remit terms (``config/departments.yaml``) and the level-3 category
names of the complaint taxonomy mapped to it (``taxonomy_map.csv``; e.g. 城管执法 →
urban-enforcement). 5-fold CV on train, top-1 / macro-F1 / NLL (C=0.5, min_df 2):
plain 0.783 / 0.780 / 0.878; with the pseudo-documents 0.791 / 0.788 / 0.803; char
1-3-gram TF-IDF + LinearSVC 0.780 / 0.772; multinomial logistic regression 0.773 /
0.770. Shipped (min_df 1, pseudo-documents): 0.794 / 0.792 / 0.791, and with the rules
0.829 / 0.825 / 0.702 -- the rules' weights as written are also where the CV NLL is
lowest (scaled by 0.5: 0.726, by 1.5: 0.709, by 2: 0.736), though CV on
keyword-retrieved items flatters keyword rules.

Scores are calibrated by temperature scaling: one temperature T, fitted by maximum
likelihood on out-of-fold decision scores (5-fold CV on train), turns the SVM scores
into ``softmax(scores / T)``, so every post's scores sum to 1.

Rules
-----
`DepartmentRules` (``config/lexicon/departments_rules.yaml``: term → department,
weight) add ``weight`` to a department's calibrated logit when the term occurs in the
post (per department only the strongest matching rule counts). They carry departments
with too little text to learn from (``secrecy`` has 11 items) and complaint words that
news text rarely uses. Terms are matched in the text, not among tokens (one
term search per post, `classifiers.terms`): a sixth of the terms, e.g. 国家秘密 or 流动商贩, are cut
in two by the tokenizer. Rules change without retraining; a router without rules
(`rules=None`) is the pure model.

Routing
-------
`decide` turns the ranked scores into a lead (主责) and co-responsible departments
(协办): below the confidence `floor` the post goes to the triage department
(``triage: true`` in ``config/departments.yaml``, i.e. ``gov-office``); otherwise the
top department leads, and up to `max_co` runners-up are co-responsible when their score
is at least `co_min` and at least `co_ratio` × the lead's. The corpus labels one lead
per item, so the co thresholds are set by what a score means, not fitted: a runner-up
the model thinks at least half as likely as the lead, and not below 0.2. In 5-fold CV
on train the defaults send 4 % of posts to triage without rules (their top-1 accuracy
is 33 %, against 82 % above the floor) and 2 % with rules (41 % against 84 %), and
give 6 % a co-responsible department.

Held-out figures (corpus test splits, never used for a decision; `evaluate`)
---------------------------------------------------------------------------
==============================  ====================  ====================
top-1 accuracy / macro-F1       keyword test (498)    random test (90)
==============================  ====================  ====================
router, no rules                0.811 / 0.798         0.767 / 0.672
router + rules (shipped)        0.817 / 0.813         0.778 / 0.718
char 1-3 TF-IDF + LinearSVC     0.803 / 0.791         0.767 / 0.639
==============================  ====================  ====================

The random test is the honest figure (keyword-found items flatter anything that learns
the query words); with 90 items its uncertainty is about ±0.09.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, NamedTuple, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from classifiers.features import Tokens, top_per_doc
from classifiers.models.linear import (
    FORMAT_VERSION,
    ScoredBatch,
    SubwordLinear,
    SubwordVocabulary,
    digest,
    load_state,
    save_state,
)
from classifiers.terms import TermSearch

__all__ = [
    "RULES_FILE",
    "DepartmentRouter",
    "DepartmentRules",
    "DepartmentRulesFile",
    "Routing",
    "decide",
]

RULES_FILE = "lexicon/departments_rules.yaml"  # under the config directory

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- rules ---------


class _DepartmentRuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(default=2.0, gt=0, le=10)
    terms: list[str | dict[str, float]] = Field(min_length=1)

    @field_validator("terms", mode="before")
    @classmethod
    def _numbers_are_terms(cls, terms: Any) -> Any:
        """YAML reads 12345 (the citizens' hotline) as a number; it is a term."""
        if isinstance(terms, list):
            return [str(t) if isinstance(t, int) and not isinstance(t, bool) else t for t in terms]
        return terms

    @field_validator("terms")
    @classmethod
    def _terms(cls, terms: list[str | dict[str, float]]) -> list[str | dict[str, float]]:
        seen: set[str] = set()
        for t in terms:
            if isinstance(t, dict):
                if len(t) != 1:
                    raise ValueError(f"write one `term: weight` per entry, got {t}")
                ((term, w),) = t.items()
                if not 0 < w <= 10:
                    raise ValueError(f"weight of {term!r} must be in (0, 10], got {w}")
            else:
                term = t
            term = str(term)
            if not term.strip() or term != term.strip():
                raise ValueError(f"empty or space-padded term {term!r}")
            if term in seen:
                raise ValueError(f"term {term!r} listed twice")
            seen.add(term)
        return terms


class DepartmentRulesFile(BaseModel):
    """Schema of ``config/lexicon/departments_rules.yaml`` (for `yuqing config check`).

    Department ids are checked against the router's catalogue when the rules are
    attached to a router (`DepartmentRouter.set_rules`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    departments: dict[str, _DepartmentRuleSet] = Field(default_factory=dict)


class DepartmentRules:
    """Term → (department, weight) boosts; see the module docstring and the YAML file.

    All terms form one term search (`classifiers.terms`), run once per post with
    overlapping matches, so 黑臭 and 黑臭水体 both fire in 河道黑臭水体治理.
    """

    def __init__(self, rules: Iterable[tuple[str, str, float]], digest: str = ""):
        self.rules: tuple[tuple[str, str, float], ...] = tuple(rules)  # (term, dept, weight)
        self.digest = digest or hashlib.sha256(repr(sorted(self.rules)).encode()).hexdigest()[:16]
        self.terms: list[str] = sorted({t for t, _, _ in self.rules})
        self._term_rules: list[list[tuple[str, float]]] = [[] for _ in self.terms]
        pos = {t: i for i, t in enumerate(self.terms)}
        for term, dept, weight in self.rules:
            self._term_rules[pos[term]].append((dept, weight))
        self._search: TermSearch | None = None
        self._classes: tuple[str, ...] | None = None
        self._ptr = self._cls = self._w = np.zeros(0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DepartmentRules) and sorted(self.rules) == sorted(other.rules)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DepartmentRules({len(self.rules)} rules, digest={self.digest})"

    @classmethod
    def from_mapping(cls, data: Any) -> DepartmentRules:
        """From the parsed YAML (validated by `DepartmentRulesFile`)."""
        parsed = DepartmentRulesFile.model_validate(data if data is not None else {})
        rules: list[tuple[str, str, float]] = []
        for dept, spec in parsed.departments.items():
            for t in spec.terms:
                if isinstance(t, dict):
                    ((term, w),) = t.items()
                    rules.append((str(term), dept, float(w)))
                else:
                    rules.append((str(t), dept, float(spec.weight)))
        return cls(rules)

    @classmethod
    def load(cls, path: Path | str | None = None) -> DepartmentRules:
        """Read the rules file; `path` None: ``<config_dir>/lexicon/departments_rules.yaml``
        of the process settings. Raises `pipeline.settings.ConfigError` on a bad file."""
        import yaml

        from pipeline.settings import ConfigError

        if path is None:
            from pipeline.settings import load_settings

            path = load_settings().config_dir / RULES_FILE
        path = Path(path)
        if not path.exists():
            raise ConfigError([f"{path}: file missing"])
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
        try:
            return cls.from_mapping(data)
        except ValidationError as err:
            raise ConfigError(
                [
                    f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}"
                    for e in err.errors(include_url=False)
                ]
            ) from None

    @property
    def departments(self) -> set[str]:
        return {d for _, d, _ in self.rules}

    def _compile(self, classes: Sequence[str]) -> None:
        """The term search, and per term the (class index, weight) entries as CSR arrays."""
        if self._search is None and self.terms:
            self._search = TermSearch(self.terms)
        index = {c: i for i, c in enumerate(classes)}
        entries = [[(index[d], w) for d, w in rs if d in index] for rs in self._term_rules]
        self._ptr = np.cumsum([0, *map(len, entries)])
        self._cls = np.array([c for e in entries for c, _ in e], dtype=np.int64)
        self._w = np.array([w for e in entries for _, w in e], dtype=np.float64)
        self._classes = tuple(classes)

    def find(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(post index, term index) of every match in `texts`, overlapping ones included."""
        if not self.terms:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if self._search is None:
            self._compile(self._classes or ())
        assert self._search is not None
        search = self._search.overlapping
        found = [[m[0] for m in search(t)] for t in texts]
        docs = np.repeat(np.arange(len(texts)), [len(f) for f in found])
        return docs, np.fromiter(chain.from_iterable(found), np.int64, count=len(docs))

    def boosts(self, texts: Sequence[str], classes: Sequence[str]) -> tuple[np.ndarray, RuleHits]:
        """Logit boosts per post (rows) and department (columns in `classes` order): for
        each department the weight of its strongest matching rule, 0 where none; and
        every (post, department, weight, term) that fired, for explanations."""
        if self._classes != tuple(classes):
            self._compile(classes)
        out = np.zeros((len(texts), len(classes)))
        docs, terms = self.find(texts)
        counts = self._ptr[terms + 1] - self._ptr[terms]
        at = np.repeat(self._ptr[terms], counts) + _ranges(counts)
        hits = RuleHits(
            np.repeat(docs, counts),
            self._cls[at],
            self._w[at],
            np.repeat(terms, counts),
            self.terms,
        )
        if len(hits.doc):
            np.maximum.at(out, (hits.doc, hits.cls), hits.weight)
        return out, hits


@dataclass(frozen=True)
class RuleHits:
    """Rules that fired in a batch: one entry per (match, department of its term)."""

    doc: np.ndarray  # post index
    cls: np.ndarray  # department column
    weight: np.ndarray
    term: np.ndarray  # index into `terms`
    terms: list[str]

    @classmethod
    def empty(cls) -> RuleHits:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, np.zeros(0), z, [])

    def for_columns(self, cols: np.ndarray, k: int) -> dict[int, list[tuple[str, float]]]:
        """Post index → up to `k` (term, weight) of its fired rules for department column
        `cols[post]`, strongest first, each term once (posts without such rules are
        absent)."""
        out: dict[int, list[tuple[str, float]]] = {}
        sel = np.flatnonzero(self.cls == cols[self.doc]) if len(self.doc) else self.doc
        if not len(sel):
            return out
        # one entry per (post, term): its strongest weight
        sel = sel[np.argsort(-self.weight[sel], kind="stable")]
        _, first = np.unique(self.doc[sel] * len(self.terms) + self.term[sel], return_index=True)
        sel = sel[first]
        sel = sel[top_per_doc(self.doc[sel], self.weight[sel], k)]
        terms = self.terms
        for d, t, w in zip(
            self.doc[sel].tolist(), self.term[sel].tolist(), self.weight[sel].tolist(), strict=True
        ):
            out.setdefault(d, []).append((terms[t], w))
        return out


def _ranges(counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges: [0..counts[0]), [0..counts[1]), …"""
    if not len(counts):
        return counts
    ends = np.cumsum(counts)
    return np.arange(ends[-1]) - np.repeat(ends - counts, counts)


# ---------------------------------------------------------------------- routing -------


class Routing(NamedTuple):
    """One post's routing decision.

    `ranked` lists the departments that get the post: the lead first, then the
    co-responsible ones, as (id, score, role). `candidates` is the top of the ranking
    whatever the decision; `terms` the words that weighed most for the lead.
    """

    lead: str
    co: tuple[str, ...]
    triaged: bool
    ranked: tuple[tuple[str, float, str], ...]
    candidates: tuple[tuple[str, float], ...]
    terms: list[str]


def decide_batch(
    top: np.ndarray,
    *,
    floor: float = 0.25,
    co_min: float = 0.2,
    co_ratio: float = 0.5,
    max_co: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """The routing rule on score rows sorted best first, shape (n, m).

    Returns `triaged` (n,): the best score is below `floor`, so the triage department
    leads alone; and `co` (n, m): which columns are co-responsible -- among columns
    1 .. `max_co`, those with a score ≥ `co_min` and ≥ `co_ratio` × the best score, in
    posts that are not triaged. Column 0 leads otherwise.
    """
    n, m = top.shape
    if m == 0:
        return np.ones(n, dtype=bool), np.zeros((n, 0), dtype=bool)
    triaged = top[:, 0] < floor
    co = np.zeros((n, m), dtype=bool)
    last = min(m, 1 + max_co)
    co[:, 1:last] = (top[:, 1:last] >= co_min) & (top[:, 1:last] >= co_ratio * top[:, :1])
    co &= ~triaged[:, None]
    return triaged, co


def decide(
    ranked: Sequence[tuple[str, float]],
    *,
    triage: str,
    floor: float = 0.25,
    co_min: float = 0.2,
    co_ratio: float = 0.5,
    max_co: int = 2,
) -> tuple[str, tuple[str, ...], bool]:
    """(lead, co-responsible, triaged) for one post from (department, score) sorted best
    first: `decide_batch` on one row."""
    scores = np.array([[s for _, s in ranked]], dtype=np.float64).reshape(1, len(ranked))
    triaged, co = decide_batch(scores, floor=floor, co_min=co_min, co_ratio=co_ratio, max_co=max_co)
    if triaged[0]:
        return triage, (), True
    return ranked[0][0], tuple(d for (d, _), c in zip(ranked, co[0], strict=True) if c), False


# ---------------------------------------------------------------------- the model -----


class DepartmentRouter:
    """Ranked, calibrated department scores and lead/co/triage routing.

    Input for `fit` and prediction: prepared texts and their tokens (the model reads
    the tokens, the rules the texts). `classes` fixes the department ids and their
    order (normally every id of ``config/departments.yaml``); a department without
    training items scores as the least likely trained one until a rule lifts it.
    """

    kind = "departments"

    def __init__(
        self,
        *,
        classes: Sequence[str] | None = None,
        triage: str = "gov-office",
        C: float = 0.5,
        min_df: int = 1,
        max_ngram: int = 3,
        floor: float = 0.25,
        co_min: float = 0.2,
        co_ratio: float = 0.5,
        max_co: int = 2,
        top_k: int = 5,
        cv_folds: int = 5,
        seed: int = 0,
        rules: DepartmentRules | None = None,
    ):
        self.classes: list[str] = list(classes) if classes is not None else []
        self.triage = triage
        self.C = C
        self.min_df = min_df
        self.max_ngram = max_ngram
        self.floor = floor
        self.co_min = co_min
        self.co_ratio = co_ratio
        self.max_co = max_co
        self.top_k = top_k
        self.cv_folds = cv_folds
        self.seed = seed
        self.temperature = 1.0
        self.linear: SubwordLinear | None = None
        self.unknown_rule_departments: list[str] = []
        self.rules: DepartmentRules | None = None
        self.set_rules(rules)
        self.metadata: dict[str, Any] = {}
        self.oof_proba_: np.ndarray | None = None

    def params(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "triage": self.triage,
            "C": self.C,
            "min_df": self.min_df,
            "max_ngram": self.max_ngram,
            "floor": self.floor,
            "co_min": self.co_min,
            "co_ratio": self.co_ratio,
            "max_co": self.max_co,
            "top_k": self.top_k,
            "cv_folds": self.cv_folds,
            "seed": self.seed,
        }

    # ------------------------------------------------------------ training ---------
    def _fit_linear(
        self, tokens: Sequence[Sequence[str]], y: np.ndarray, w: np.ndarray
    ) -> tuple[SubwordVocabulary, np.ndarray, np.ndarray]:
        """Vocabulary, coef (F, K) and intercept (K,) over all `self.classes`."""
        from sklearn.svm import LinearSVC

        vocab = SubwordVocabulary.fit(tokens, min_df=self.min_df, max_ngram=self.max_ngram)
        clf = LinearSVC(C=self.C, random_state=self.seed).fit(vocab.transform(tokens), y, w)
        k = len(self.classes)
        coef = np.zeros((len(vocab.features), k))
        intercept = np.zeros(k)
        present = clf.classes_.astype(np.int64)
        if len(present) == 2:  # liblinear returns one column for two classes
            coef[:, present[1]], intercept[present[1]] = clf.coef_[0], clf.intercept_[0]
            coef[:, present[0]], intercept[present[0]] = -clf.coef_[0], -clf.intercept_[0]
        else:
            coef[:, present], intercept[present] = clf.coef_.T, clf.intercept_
        absent = np.setdiff1d(np.arange(k), present)
        intercept[absent] = intercept[present].min() - 1.0  # reachable by rules only
        return vocab, coef, intercept

    def fit(
        self,
        texts: Sequence[str],
        tokens: Sequence[Sequence[str]],
        labels: Sequence[str],
        *,
        sample_weight: Sequence[float] | None = None,
        fixed: Sequence[bool] | None = None,
    ) -> Self:
        """Fit on posts labelled with department ids, then fit the temperature.

        `fixed` marks items that are always in the training folds and never scored out
        of fold (the configuration pseudo-documents): the temperature is fitted on the
        out-of-fold scores of the others, which are also kept in `oof_proba_`.
        """
        from sklearn.model_selection import StratifiedKFold

        if not (len(texts) == len(tokens) == len(labels)):
            raise ValueError("texts, tokens and labels differ in length")
        if not self.classes:
            self.classes = sorted(set(labels))
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(f"labels not among the classes: {unknown}")
        if self.triage not in index:
            raise ValueError(f"triage department {self.triage!r} is not among the classes")
        y = np.array([index[label] for label in labels], dtype=np.int64)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        fix = np.zeros(len(y), bool) if fixed is None else np.asarray(fixed, bool)
        scored = np.flatnonzero(~fix)
        counts = np.bincount(y[scored], minlength=len(self.classes))
        # Departments with fewer items than folds are left out of some training folds
        # (their column then scores as untrained there): that is their real situation.
        folds = min(self.cv_folds, int(counts.max()) if scored.size else 0)
        self.temperature = 1.0
        self.oof_proba_ = None
        if folds >= 2 and len(np.unique(y[scored])) >= 2:
            oof = np.zeros((len(scored), len(self.classes)))
            skf = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "The least populated class", UserWarning)
                splits = list(skf.split(np.zeros(len(scored)), y[scored]))
            for tr, te in splits:
                train_idx = np.concatenate([scored[tr], np.flatnonzero(fix)])
                vocab, coef, b = self._fit_linear(
                    [tokens[i] for i in train_idx], y[train_idx], w[train_idx]
                )
                x = vocab.transform([tokens[i] for i in scored[te]])
                oof[te] = x @ coef + b
            self.temperature = fit_temperature(oof, y[scored])
            self.oof_proba_ = _softmax(oof / self.temperature)
        vocab, coef, b = self._fit_linear(tokens, y, w)
        self.linear = SubwordLinear.from_vocabulary(vocab, coef, b, scale=1 / self.temperature)
        self.metadata = {
            "kind": self.kind,
            "format": FORMAT_VERSION,
            "params": self.params(),
            "temperature": self.temperature,
            "features": len(vocab.features),
            "n_train": len(scored),
            "n_fixed": int(fix.sum()),
            "train_counts": {c: int(n) for c, n in zip(self.classes, counts, strict=True)},
            "train_digest": digest(
                f"{a}\t{b:g}\t{int(f)}\t{t}"
                for a, b, f, t in zip(labels, w, fix, texts, strict=True)
            ),
        }
        return self

    # ------------------------------------------------------------ rules ------------
    def set_rules(self, rules: DepartmentRules | None) -> None:
        """Attach (or with None remove) lexicon rules.

        Rules for departments the router was not trained with are ignored with a
        warning rather than refused: a department added to the catalogue after training
        must not stop classification (retraining makes it, and its rules, count).
        """
        self.unknown_rule_departments = []
        if rules is not None and self.classes:
            self.unknown_rule_departments = sorted(rules.departments - set(self.classes))
            if self.unknown_rule_departments:
                log.warning(
                    "department rules for departments the router does not know are ignored"
                    " (retrain to include them): %s",
                    ", ".join(self.unknown_rule_departments),
                )
        self.rules = rules

    # ------------------------------------------------------------ prediction -------
    def _require(self) -> SubwordLinear:
        if self.linear is None:
            raise RuntimeError("the department router is not trained")
        return self.linear

    def _logits(
        self, texts: Sequence[str], tokens: Tokens
    ) -> tuple[np.ndarray, ScoredBatch, RuleHits]:
        """Calibrated logits plus rule boosts, the scoring batch, and the rules that fired."""
        if len(texts) != len(tokens):
            raise ValueError("texts and tokens differ in length")
        z, batch = self._require()._score(tokens)
        hits = RuleHits.empty()
        if self.rules is not None:
            boost, hits = self.rules.boosts(texts, self.classes)
            z = z + boost
        return z, batch, hits

    def predict_proba(self, texts: Sequence[str], tokens: Tokens) -> np.ndarray:
        """Scores of every department (columns in `classes` order); rows sum to 1."""
        return _softmax(self._logits(texts, tokens)[0])

    def rank(
        self, texts: Sequence[str], tokens: Tokens, k: int | None = None
    ) -> list[list[tuple[str, float]]]:
        """Per post, the departments best first with their scores (all, or the top k)."""
        p = self.predict_proba(texts, tokens)
        return [self._ranked(row, k) for row in p]

    def _ranked(self, row: np.ndarray, k: int | None) -> list[tuple[str, float]]:
        order = np.argsort(-row, kind="stable")[: k or len(row)]
        return [(self.classes[i], float(row[i])) for i in order]

    def route(self, texts: Sequence[str], tokens: Tokens) -> list[Routing]:
        """Lead, co-responsible and triage per post, with the terms behind the lead."""
        z, batch, hits = self._logits(texts, tokens)
        p = _softmax(z)
        n = len(p)
        m = min(len(self.classes), max(self.top_k, 1 + self.max_co))
        best = np.argsort(-p, axis=1, kind="stable")[:, :m]
        top = np.take_along_axis(p, best, axis=1)
        triaged, co = decide_batch(
            top, floor=self.floor, co_min=self.co_min, co_ratio=self.co_ratio, max_co=self.max_co
        )
        triage = self.classes.index(self.triage)
        leads = np.where(triaged, triage, best[:, 0])
        lead_p = p[np.arange(n), leads].tolist()
        model_terms = batch.top_terms(leads, np.ones(n), self.top_k)
        fired = hits.for_columns(leads, self.top_k)
        classes = self.classes
        k = self.top_k
        names = [[classes[j] for j in row[:k]] for row in best.tolist()]
        top_l = [row[:k] for row in top.tolist()]
        leads_l, triaged_l, any_co = leads.tolist(), triaged.tolist(), co.any(axis=1).tolist()
        out = []
        for i in range(n):
            lead = classes[leads_l[i]]
            roles: tuple[tuple[str, float, str], ...] = ((lead, lead_p[i], "lead"),)
            co_ids: tuple[str, ...] = ()
            if any_co[i]:
                co_i = np.flatnonzero(co[i]).tolist()
                co_ids = tuple(classes[best[i, j]] for j in co_i)
                roles += tuple((classes[best[i, j]], float(top[i, j]), "co") for j in co_i)
            if i in fired:
                terms = _merge_terms(model_terms[i], fired[i], k)
            else:
                terms = [t for t, _ in model_terms[i]]
            candidates = tuple(zip(names[i], top_l[i], strict=True))
            out.append(Routing(lead, co_ids, triaged_l[i], roles, candidates, terms))
        return out

    def explain(
        self, text: str, tokens: Sequence[str], department: str | None = None, k: int = 5
    ) -> list[str]:
        """The terms of one post that weighed most for `department` (default: its lead)."""
        z, batch, hits = self._logits([text], [tokens])
        c = int(np.argmax(z[0])) if department is None else self.classes.index(department)
        model_terms = batch.top_terms(np.array([c]), np.ones(1), k)[0]
        return _merge_terms(model_terms, hits.for_columns(np.array([c]), k).get(0, []), k)

    # ------------------------------------------------------------ persistence ------
    def save(self, path: Path | str) -> None:
        """`path` (skops) plus `path` with suffix .json (the metadata). Rules are config
        and are not saved; attach them after `load`."""
        state = {
            "kind": self.kind,
            "format": FORMAT_VERSION,
            "params": self.params(),
            "temperature": self.temperature,
            **self._require().state(),
        }
        save_state(path, state, self.metadata)

    @classmethod
    def load(
        cls, path: Path | str, rules: DepartmentRules | Literal["config"] | None = "config"
    ) -> DepartmentRouter:
        """A saved router with `rules` attached: by default the rules file of the process
        settings' config directory (a missing file is logged, not fatal: the router then
        runs on the model alone; a broken one raises ConfigError); None for no rules."""
        if rules == "config":
            from pipeline.settings import load_settings

            rules_path = load_settings().config_dir / RULES_FILE
            if rules_path.exists():
                rules = DepartmentRules.load(rules_path)
            else:
                log.warning("no department rules at %s: routing on the model alone", rules_path)
                rules = None
        state, metadata = load_state(path, cls.kind)
        params = dict(state["params"])
        router = cls(**params)
        router.temperature = float(state["temperature"])
        router.linear = SubwordLinear.from_state(state)
        router.metadata = metadata
        router.set_rules(rules)
        return router


def _merge_terms(
    model: list[tuple[str, float]], rules: list[tuple[str, float]], k: int
) -> list[str]:
    """Model tokens and fired rule terms, strongest first, each once."""
    merged = sorted([*model, *rules], key=itemgetter(1), reverse=True)
    out: list[str] = []
    for term, _ in merged:
        if term not in out:
            out.append(term)
    return out[:k]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """T minimising the negative log-likelihood of softmax(scores / T)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return float(-log_softmax(scores * np.exp(-log_t), axis=1)[rows, y].mean())

    res = minimize_scalar(nll, bounds=(-6.0, 6.0), method="bounded")
    return float(np.exp(res.x))


# ---------------------------------------------------------------------- training ------


def config_documents(config_dir: Path | None = None) -> list[tuple[str, str]]:
    """(text, department) pseudo-documents from configuration: each department's name
    with its remit terms, and each complaint-taxonomy category mapped to a department
    (its level-3 name)."""
    from classifiers.datasets.departments import TAXONOMY_MAP_PATH
    from pipeline.config import DepartmentsFile, load_file

    if config_dir is None:
        from pipeline.settings import load_settings

        config_dir = load_settings().config_dir
    catalogue = load_file(config_dir, "departments.yaml", DepartmentsFile)
    docs = [
        (" ".join([d.name, *[r for r in d.remit if r != "default triage"]]), d.id)
        for d in catalogue.departments
    ]
    with TAXONOMY_MAP_PATH.open(encoding="utf-8") as fh:
        docs += [(r["level3"], r["department"]) for r in csv.DictReader(fh) if r["department"]]
    return docs


def catalogue(config_dir: Path | None = None) -> tuple[list[str], str]:
    """Department ids in catalogue order and the triage department, from config."""
    from pipeline.config import DepartmentsFile, load_file

    if config_dir is None:
        from pipeline.settings import load_settings

        config_dir = load_settings().config_dir
    cat = load_file(config_dir, "departments.yaml", DepartmentsFile)
    return [d.id for d in cat.departments], cat.triage


def train(
    tokenizer: Any = None,
    *,
    version: str = "dev",
    config_dir: Path | None = None,
    pseudo_documents: bool = True,
    **params: Any,
) -> tuple[DepartmentRouter, dict[str, Any]]:
    """Train the shipped router on the corpus ``train`` split (+ config pseudo-documents);
    returns it (without rules: attach them) and its cross-validated figures."""
    from classifiers.datasets.departments import LABELS_PATH, TAXONOMY_MAP_PATH, load_corpus
    from classifiers.text import prepare

    if tokenizer is None:
        from classifiers.tokenize import Tokenizer

        tokenizer = Tokenizer()
    if config_dir is None:
        from pipeline.settings import load_settings

        config_dir = load_settings().config_dir
    classes, triage = catalogue(config_dir)
    rows = load_corpus("train")
    items = [(r["text"], r["label"], False) for r in rows]
    if pseudo_documents:
        items += [(t, d, True) for t, d in config_documents(config_dir)]
    texts = [prepare(None, t) for t, _, _ in items]
    tokens = tokenizer.tokenize_batch(texts)
    labels = [d for _, d, _ in items]
    fixed = [f for _, _, f in items]
    router = DepartmentRouter(classes=classes, triage=triage, **params)
    router.fit(texts, tokens, labels, fixed=fixed)
    cv: dict[str, Any] = {}
    if router.oof_proba_ is not None:
        y = [d for d, f in zip(labels, fixed, strict=True) if not f]
        cv = routing_metrics(router, y, router.oof_proba_)
    router.metadata.update(
        version=version,
        data={
            "departments/labels.jsonl": hashlib.sha256(LABELS_PATH.read_bytes()).hexdigest(),
            "departments/taxonomy_map.csv": hashlib.sha256(
                TAXONOMY_MAP_PATH.read_bytes()
            ).hexdigest(),
            "config/departments.yaml": hashlib.sha256(
                (config_dir / "departments.yaml").read_bytes()
            ).hexdigest(),
        },
        pseudo_documents=int(sum(fixed)),
        cv=cv,
    )
    return router, cv


def routing_metrics(
    router: DepartmentRouter, y: Sequence[str], proba: np.ndarray
) -> dict[str, Any]:
    """Top-1 accuracy and macro-F1 of the best-scoring department, NLL and ECE of its
    score, and what `decide` makes of the scores: triage rate, accuracy of the lead
    (triaged posts count as `triage`), and how often the label is lead or co."""
    from sklearn.metrics import accuracy_score, f1_score

    classes = router.classes
    yi = np.array([classes.index(d) for d in y])
    pred = proba.argmax(axis=1)
    conf = proba.max(axis=1)
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum(
        abs(conf[bins == b].mean() - (pred == yi)[bins == b].mean()) * np.mean(bins == b)
        for b in range(10)
        if np.any(bins == b)
    )
    leads, hits, triaged, with_co = [], 0, 0, 0
    for row, true in zip(proba, y, strict=True):
        ranked = router._ranked(row, 1 + router.max_co)
        lead, co, tri = decide(
            ranked,
            triage=router.triage,
            floor=router.floor,
            co_min=router.co_min,
            co_ratio=router.co_ratio,
            max_co=router.max_co,
        )
        leads.append(lead)
        hits += true == lead or true in co
        triaged += tri
        with_co += bool(co)
    n = len(y)
    top1 = [classes[i] for i in pred]
    return {
        "n": n,
        "top1_accuracy": float(accuracy_score(y, top1)),
        "top1_macro_f1": float(f1_score(y, top1, average="macro")),
        "nll": float(-np.mean(np.log(np.maximum(proba[np.arange(n), yi], 1e-12)))),
        "ece": float(ece),
        "lead_accuracy": float(accuracy_score(y, leads)),
        "lead_or_co_accuracy": hits / n,
        "triage_rate": triaged / n,
        "co_rate": with_co / n,
    }


# ---------------------------------------------------------------------- evaluation ----


def heldout_splits() -> dict[str, list[dict]]:
    """The corpus test splits, reported separately: ``keyword`` (items found by the
    department queries, flattering to anything that learns those words) and ``random``
    (items drawn at random from the pool: the honest figure)."""
    from classifiers.datasets.departments import load_corpus

    return {
        "keyword": load_corpus("test", "keyword"),
        "random": load_corpus("test", "random"),
    }


def evaluate(
    router: DepartmentRouter, tokenizer: Any = None, rules: DepartmentRules | None = None
) -> dict[str, dict[str, Any]]:
    """`routing_metrics` on each held-out split, without and with `rules`."""
    from classifiers.text import prepare

    if tokenizer is None:
        from classifiers.tokenize import Tokenizer

        tokenizer = Tokenizer()
    saved = router.rules
    out: dict[str, dict[str, Any]] = {}
    try:
        for name, rows in heldout_splits().items():
            texts = [prepare(None, r["text"]) for r in rows]
            tokens = tokenizer.tokenize_batch(texts)
            y = [r["label"] for r in rows]
            for label, rs in (("model", None), ("model+rules", rules)):
                if label == "model+rules" and rules is None:
                    continue
                router.set_rules(rs)
                out[f"{name}/{label}"] = routing_metrics(
                    router, y, router.predict_proba(texts, tokens)
                )
    finally:
        router.set_rules(saved)
    return out


def baseline(seed: int = 0) -> dict[str, dict[str, float]]:
    """Character 1-3-gram TF-IDF + LinearSVC on the raw train split (the corpus README's
    sanity baseline), scored on each held-out split: top-1 accuracy and macro-F1."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    from classifiers.datasets.departments import load_corpus

    train_rows = load_corpus("train")
    clf = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3)), LinearSVC(random_state=seed)
    ).fit([r["text"] for r in train_rows], [r["label"] for r in train_rows])
    out = {}
    for name, rows in heldout_splits().items():
        y = [r["label"] for r in rows]
        pred = clf.predict([r["text"] for r in rows])
        out[name] = {
            "n": len(y),
            "top1_accuracy": float(accuracy_score(y, pred)),
            "top1_macro_f1": float(f1_score(y, pred, average="macro")),
        }
    return out


def _main(argv: list[str] | None = None) -> int:
    """``python -m classifiers.models.departments train|report``: train both models into
    a directory, or print their held-out figures (json)."""
    import argparse
    import json

    from classifiers.models import relevance
    from classifiers.tokenize import Tokenizer

    ap = argparse.ArgumentParser(prog="python -m classifiers.models.departments")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train relevance and router into DIR")
    t.add_argument("dir", type=Path)
    t.add_argument("--version", default="dev")
    r = sub.add_parser("report", help="held-out figures of the models in DIR")
    r.add_argument("dir", type=Path)
    args = ap.parse_args(argv)
    tokenizer = Tokenizer()
    if args.cmd == "train":
        router, cv = train(tokenizer, version=args.version)
        router.save(args.dir / "departments.skops")
        rel, rel_cv = relevance.train(tokenizer, version=args.version)
        rel.save(args.dir / "relevance.skops")
        print(json.dumps({"departments_cv": cv, "relevance_cv": rel_cv}, indent=1))
        return 0
    router = DepartmentRouter.load(args.dir / "departments.skops")
    rel = relevance.RelevanceModel.load(args.dir / "relevance.skops")
    report = {
        "departments": evaluate(router, tokenizer, DepartmentRules.load()),
        "departments_baseline": baseline(),
        "relevance": relevance.evaluate(rel, tokenizer),
    }
    print(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
