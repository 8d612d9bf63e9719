"""The classifier: posts in, classifications out (DESIGN: Classification output).

One call handles a batch: each post is prepared (cleaned, masked) and tokenized once,
and every model reads those same tokens, because segmentation is the costliest step and
the stage must keep up with ≥ 10,000 posts/s per core. The trained models come from an
artifact directory (`manifest.json` + skops files): `<data_dir>/models/current` when an
operator has trained one there, else the artifacts shipped in the package, so a fresh
install classifies without training. Lexicons, watchlists and severity rules are config.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from classifiers.models.sensitivity import SensitivityScorer
from classifiers.severity import SeverityGrader, load_config
from classifiers.text import prepare
from classifiers.tokenize import Tokenizer
from classifiers.watchlists import Watchlists
from pipeline import collector
from pipeline import config as config_files
from pipeline.messages import Classification, DepartmentScore, now_utc
from pipeline.settings import Settings

M = TypeVar("M", Classification, DepartmentScore)

log = logging.getLogger(__name__)

SHIPPED_ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MANIFEST = "manifest.json"


def _constructor(model: type[M]) -> Callable[..., M]:
    """`model.model_construct` for callers that give every field: the instance state
    pydantic's own `model_construct` ends with, without its per-field loop over
    defaults and aliases (6 µs a result and 3 a department score there, ~1 here: 4 % of
    the whole classification). `tests/classifiers/test_classify.py` checks that both
    build the same instance."""
    plain = (
        model.__pydantic_post_init__ is None
        and not model.__pydantic_root_model__
        and model.model_config.get("extra") != "allow"
    )
    if not plain:  # pragma: no cover - pydantic's own path handles the rest
        return model.model_construct
    fields = frozenset(model.model_fields)
    new = model.__new__
    setattr_ = object.__setattr__

    def construct(**values: Any) -> M:
        if values.keys() != fields:
            raise TypeError(f"{model.__name__} takes every field: {sorted(fields)}")
        instance = new(model)
        setattr_(instance, "__dict__", values)
        setattr_(instance, "__pydantic_fields_set__", set(fields))
        setattr_(instance, "__pydantic_extra__", None)
        setattr_(instance, "__pydantic_private__", None)
        return instance

    return construct


_new_classification = _constructor(Classification)
_new_department_score = _constructor(DepartmentScore)


@dataclass(frozen=True, slots=True)
class Doc:
    """What the classifier needs of a post."""

    id: str
    title: str | None
    text: str
    source: str = ""


def artifact_dir(settings: Settings) -> Path:
    """Where the models to load are: an operator's trained set, else the shipped one."""
    trained = settings.data_dir / "models" / "current"
    return trained if (trained / MANIFEST).exists() else SHIPPED_ARTIFACTS


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"no model manifest at {path}: run `yuqing train`")
    return json.loads(path.read_text(encoding="utf-8"))


class Classifier:
    """Every model and rule set, loaded once; `classify` is the batch entry point."""

    def __init__(
        self,
        *,
        version: str,
        tokenizer: Tokenizer,
        relevance: Any,
        router: Any,
        sentiment: Any,
        sensitivity: SensitivityScorer,
        watchlists: Watchlists,
        grader: SeverityGrader,
        topics: dict[str, str],
    ):
        self.tokenizer = tokenizer
        self.relevance = relevance
        self.router = router
        self.sentiment = sentiment
        self.sentiment_labels: tuple[str, ...] = tuple(sentiment.labels)
        self.sensitivity = sensitivity
        self.watchlists = watchlists
        self.grader = grader
        self.topics = topics
        # Lexicons change classifications as much as models do: both name the version.
        self.model_version = f"{version}+{sensitivity.digest[:6]}"

    @classmethod
    def load(cls, settings: Settings, directory: Path | None = None) -> Classifier:
        from classifiers.models.departments import RULES_FILE, DepartmentRouter, DepartmentRules
        from classifiers.models.relevance import RelevanceModel
        from classifiers.models.sentiment import SentimentModel

        directory = directory or artifact_dir(settings)
        manifest = read_manifest(directory)
        files = manifest["models"]
        config_dir = settings.config_dir
        sensitivity = SensitivityScorer.load(config_dir)
        departments = config_files.departments(settings)
        log.info("loading models %s from %s", manifest["version"], directory)
        classifier = cls(
            version=manifest["version"],
            tokenizer=Tokenizer(config_dir / "lexicon"),
            relevance=RelevanceModel.load(directory / files["relevance"]),
            router=DepartmentRouter.load(
                directory / files["departments"],
                rules=DepartmentRules.load(config_dir / RULES_FILE),
            ),
            sentiment=SentimentModel.load(directory / files["sentiment"]),
            sensitivity=sensitivity,
            watchlists=Watchlists.load(config_dir),
            grader=SeverityGrader(load_config(config_dir), count_kinds=sensitivity.lexicon.counts),
            topics={d.id: d.topic for d in departments.departments},
        )
        return classifier

    def classify(self, docs: Sequence[Doc], *, cleaned: bool = False) -> list[Classification]:
        """One Classification per doc, in order. `cleaned`: title and text of every doc
        already went through `clean_and_mask` (see `classifiers.text.prepare`).

        The cycle collector is paused for the batch: a batch makes ~100 short-lived
        containers per post and no cycles, and its passes, each walking the ~150,000
        objects of the loaded models, cost 5-20 % of the time (benchmarks/classify.py);
        it runs again afterwards (`pipeline.collector`; a stage pauses it for its whole
        batch too).
        """
        if not docs:
            return []
        with collector.paused():
            return self._classify(docs, cleaned)

    def _classify(self, docs: Sequence[Doc], cleaned: bool) -> list[Classification]:
        classified_at = now_utc()  # one instant per batch: the posts are judged together
        texts = [prepare(d.title, d.text, cleaned=cleaned) for d in docs]
        tokens, ids = self.tokenizer.tokenize_with_ids(texts)  # ids shared by the models
        relevance, relevance_terms = self.relevance.predict_with_terms(texts, ids, k=5)
        routes = self.router.route(texts, ids)
        sentiment, sentiment_terms = self.sentiment.predict_with_terms(texts, ids, k=5)
        sensitivity = self.sensitivity.score_batch(texts, tokens)
        hits = self.watchlists.match_batch(texts, [d.source for d in docs])
        best = sentiment.argmax(axis=1)
        labels = [self.sentiment_labels[b] for b in best.tolist()]
        sentiment_p = sentiment[np.arange(len(docs)), best].tolist()
        relevance_p = relevance.tolist()
        # The fields below are valid by construction (probabilities in [0, 1], labels
        # from the models' label sets), so the results are built without pydantic's
        # validation; a test validates the classifier's output against the schema.
        new_result, new_score = _new_classification, _new_department_score
        out = []
        for i, doc in enumerate(docs):
            p_rel = relevance_p[i]
            p_sent = sentiment_p[i]
            label = labels[i]
            sent_terms = sentiment_terms[i]
            sens = sensitivity[i]
            grade = self.grader.grade(
                sentiment=label,
                sentiment_score=p_sent,
                relevant=p_rel >= 0.5,
                relevance_score=p_rel,
                sensitivity=sens,
                watch_hits=hits[i],
                sentiment_terms=sent_terms,
            )
            route = routes[i]
            depts = [new_score(id=d, score=round(s, 4), role=r) for d, s, r in route.ranked]
            lead = route.ranked[0][0] if route.ranked else None
            explanation: dict[str, list[str]] = {}
            for key, terms in (
                ("relevance", relevance_terms[i]),
                ("departments", route.terms),
                ("sentiment", sent_terms),
                ("severity", grade.terms),
            ):
                if terms:
                    explanation[key] = list(terms)
            for category, terms in sens.explanation().items():
                if terms:
                    explanation[f"sensitivity.{category}"] = terms
            if hits[i]:
                explanation["watchlists"] = [h.rule_id for h in hits[i]]
            out.append(
                new_result(
                    post_id=doc.id,
                    model_version=self.model_version,
                    policy_relevant=p_rel >= 0.5,
                    relevance_score=round(p_rel, 4),
                    departments=depts,
                    topic=self.topics.get(lead) if lead else None,
                    sentiment=label,
                    sentiment_score=round(p_sent, 4),
                    sensitivity=list(sens.names),
                    severity=grade.level,
                    explanation=explanation,
                    classified_at=classified_at,
                )
            )
        return out
