"""Severity: how urgently a post needs the district's attention.

One of `critical` (特别重大/重大), `high` (较大), `medium` (一般), `low` (关注) — the
levels of DESIGN.md, whose deadlines `config/sla.yaml` sets — or `none` (not worth an
alert: irrelevant, or neutral/positive with no sensitivity). It combines what the
classifier already knows about the post:

- sentiment (label and probability),
- policy relevance (the relevance model's decision and score),
- sensitivity (categories, scores and counts such as deaths or crowd size),
- watchlist hits (each may carry a severity floor).

The event's heat (how many posts, how fast) is not known per post; the responder adds
it when it clusters posts into events.

The thresholds are data (`config/severity.yaml`, validated by `yuqing config check`):
an ordered list of rules, each a level and a condition. The highest level whose
condition holds wins (among rules of one level, the first listed names the reason),
and watchlist floors can only raise the result. A post the relevance model rejects is
`none` unless a watchlist matched it or a sensitivity category is very strong, so a
deadly fire still gets through a relevance miss.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from classifiers.models.sensitivity import Category, Sensitivity
from classifiers.watchlists import WatchHit
from pipeline.config import require_unique_ids

__all__ = [
    "LEVELS",
    "SEVERITY_FILE",
    "Severity",
    "SeverityConfig",
    "SeverityGrader",
    "load_config",
    "severity",
]

# Path relative to the config directory (also its `config check` name).
SEVERITY_FILE = "severity.yaml"

# Lowest to highest; `none` means no alert.
LEVELS: tuple[str, ...] = ("none", "low", "medium", "high", "critical")
_RANK = {level: rank for rank, level in enumerate(LEVELS)}

Level = Literal["critical", "high", "medium", "low"]
Sentiment = Literal["negative", "neutral", "positive"]
Probability = Annotated[float, Field(ge=0, le=1)]


# --------------------------------------------------------------------------- schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """Everything given must hold. Category requirements are met by one reported
    category that is in `categories` (`any`: every category) and scores at least
    `min_score` (default: reported at all)."""

    categories: list[Category] | Literal["any"] | None = None
    min_score: Probability | None = None
    min_categories: int | None = Field(default=None, ge=1, le=6)
    counts: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")], int] = Field(
        default_factory=dict
    )
    sentiment: list[Sentiment] | None = None
    min_sentiment_score: Probability | None = None
    min_relevance: Probability | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set - {"counts"} and not self.counts:
            raise ValueError("a condition needs at least one requirement")
        if self.min_sentiment_score is not None and self.sentiment is None:
            raise ValueError("min_sentiment_score needs sentiment (the labels it applies to)")
        return self


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    level: Level
    name: str = ""
    when: Condition


class RelevanceGate(_Strict):
    # A post the relevance model rejects still counts when a category scores this much.
    override_sensitivity: Probability = 0.85


class SeverityConfig(_Strict):
    """Schema of `config/severity.yaml` (see the file's header)."""

    relevance_gate: RelevanceGate = RelevanceGate()
    # The level a watchlist hit without its own `severity_floor` guarantees.
    watchlist_floor: Level | None = "low"
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> SeverityConfig:
        require_unique_ids(self.rules, "rule")
        return self

    def ordered_rules(self) -> list[Rule]:
        """Highest level first; file order within a level."""
        return sorted(self.rules, key=lambda r: -_RANK[r.level])


# --------------------------------------------------------------------------- output


class Severity(NamedTuple):
    """The level, the rule that decided it ("watchlist:<id>" for a floor; None for
    `none`), and the terms behind it, for the explanation."""

    level: str
    rule: str | None
    terms: tuple[str, ...]


NO_SEVERITY = Severity("none", None, ())


# --------------------------------------------------------------------------- grading


class _Step(NamedTuple):
    """A rule compiled to plain values: grading runs per post, so it reads tuples, not
    pydantic models (see the loop in `severity`)."""

    level: str
    rule_id: str
    sentiments: frozenset[str] | None
    min_sentiment_score: float
    min_relevance: float
    counts: tuple[tuple[str, int], ...]
    min_categories: int
    categories: frozenset[str] | None  # None: any category
    min_score: float | None  # None: no category requirement

    @classmethod
    def of(cls, rule: Rule) -> _Step:
        when = rule.when
        wants_category = when.categories is not None or when.min_score is not None
        return cls(
            level=rule.level,
            rule_id=rule.id,
            sentiments=frozenset(when.sentiment) if when.sentiment is not None else None,
            min_sentiment_score=when.min_sentiment_score or 0.0,
            min_relevance=when.min_relevance or 0.0,
            counts=tuple(when.counts.items()),
            min_categories=when.min_categories or 0,
            categories=frozenset(when.categories) if isinstance(when.categories, list) else None,
            min_score=(when.min_score or 0.0) if wants_category else None,
        )

    @property
    def needs_sensitivity(self) -> bool:
        return self.min_score is not None or bool(self.counts) or self.min_categories > 0

    def evidence(self, sensitivity: Sensitivity) -> tuple[str, ...]:
        """The terms behind this rule, once it holds: those of the categories it asked
        for (every category when it asked for none)."""
        categories = sensitivity.categories
        if self.min_score is not None:
            wanted, floor = self.categories, self.min_score
            categories = tuple(
                c
                for c in categories
                if c.score >= floor and (wanted is None or c.category in wanted)
            )
        if len(categories) == 1:
            return categories[0].terms
        return tuple(dict.fromkeys(t for c in categories for t in c.terms))


class SeverityGrader:
    """Grades posts under one `SeverityConfig`; build once, call `grade` per post.

    The rules are compiled to tuples and sorted once here: `grade` runs for every
    post, and reading pydantic models in that loop would cost more than the grading.
    """

    def __init__(self, config: SeverityConfig, count_kinds: Iterable[str] | None = None):
        """`count_kinds` (the sensitivity lexicon's, `scorer.lexicon.counts`) lets a
        rule that names a count the lexicon never produces fail here rather than never
        hold: the two files are checked one by one by `config check`."""
        if count_kinds is not None:
            known = set(count_kinds)
            unknown = [
                f"{rule.id}: {kind}"
                for rule in config.rules
                for kind in rule.when.counts
                if kind not in known
            ]
            if unknown:
                raise ValueError(
                    f"{SEVERITY_FILE}: count kinds the sensitivity lexicon does not have "
                    f"({', '.join(sorted(known))}): {'; '.join(unknown)}"
                )
        self.config = config
        self._gate = config.relevance_gate.override_sensitivity
        self._watchlist_floor = config.watchlist_floor
        self._plan = [_Step.of(rule) for rule in config.ordered_rules()]
        # The rules that can hold for a post with no sensitivity at all (most posts).
        self._plan_plain = [step for step in self._plan if not step.needs_sensitivity]

    def grade(
        self,
        *,
        sentiment: str,
        sentiment_score: float,
        relevant: bool,
        relevance_score: float,
        sensitivity: Sensitivity,
        watch_hits: Sequence[WatchHit] = (),
        sentiment_terms: Sequence[str] = (),
    ) -> Severity:
        """The severity of one classified post; see `severity` for the arguments."""
        categories, counts = sensitivity.categories, sensitivity.counts
        if not relevant and not watch_hits and (not categories or categories[0].score < self._gate):
            return NO_SEVERITY

        result = NO_SEVERITY
        # The first rule that holds wins (the plan is sorted highest level first). The
        # checks are inlined, cheapest first.
        for step in self._plan if (categories or counts) else self._plan_plain:
            sentiments = step.sentiments
            if sentiments is not None and (
                sentiment not in sentiments or sentiment_score < step.min_sentiment_score
            ):
                continue
            if relevance_score < step.min_relevance or len(categories) < step.min_categories:
                continue
            if step.counts and not _counts_reach(counts, step.counts):
                continue
            floor = step.min_score
            if floor is not None:
                wanted = step.categories
                for c in categories:
                    if c.score >= floor and (wanted is None or c.category in wanted):
                        break
                else:
                    continue
            terms = step.evidence(sensitivity)
            if sentiments is not None and sentiment_terms:
                terms = tuple(dict.fromkeys([*terms, *sentiment_terms]))
            result = Severity(step.level, step.rule_id, terms)
            break

        for hit in watch_hits:
            floor_level = hit.severity_floor or self._watchlist_floor
            if floor_level is not None and _RANK[floor_level] > _RANK[result.level]:
                result = Severity(floor_level, f"watchlist:{hit.rule_id}", hit.terms)
        return result


def _counts_reach(counts: Mapping[str, int], required: tuple[tuple[str, int], ...]) -> bool:
    """Every required count is reached. A plain loop: `all(<generator>)` costs about a
    microsecond more per call here, and this runs for several rules per post."""
    for kind, least in required:  # noqa: SIM110
        if counts.get(kind, 0) < least:
            return False
    return True


def severity(
    *,
    sentiment: str,
    sentiment_score: float,
    relevant: bool,
    relevance_score: float,
    sensitivity: Sensitivity,
    watch_hits: Sequence[WatchHit] = (),
    sentiment_terms: Sequence[str] = (),
    config: SeverityConfig | None = None,
) -> Severity:
    """The severity of one classified post (see the module docstring).

    `sentiment` is negative / neutral / positive with its probability; `relevant` and
    `relevance_score` come from the relevance model; `sentiment_terms` (the sentiment
    model's explanation) are added to the reasons of rules that test sentiment.
    `config` defaults to `config/severity.yaml` of the process settings. (A stage that
    grades many posts can hold a `SeverityGrader` itself; this function keeps one per
    config object.)
    """
    return _grader(config if config is not None else load_config()).grade(
        sentiment=sentiment,
        sentiment_score=sentiment_score,
        relevant=relevant,
        relevance_score=relevance_score,
        sensitivity=sensitivity,
        watch_hits=watch_hits,
        sentiment_terms=sentiment_terms,
    )


# Graders by config object. The entry holds the config, so its id is not reused while
# cached; pydantic models with lists are neither hashable nor weak-referenceable.
_GRADERS: dict[int, SeverityGrader] = {}


def _grader(config: SeverityConfig) -> SeverityGrader:
    grader = _GRADERS.get(id(config))
    if grader is None or grader.config is not config:
        if len(_GRADERS) >= 16:
            _GRADERS.clear()
        grader = _GRADERS[id(config)] = SeverityGrader(config)
    return grader


@lru_cache(maxsize=4)
def load_config(config_dir: Path | None = None) -> SeverityConfig:
    """`severity.yaml` under `config_dir` (default: the process settings' config dir),
    read once per process; ConfigError names file, key and problem."""
    from pipeline.config import load_file

    if config_dir is None:
        from pipeline.settings import load_settings

        config_dir = load_settings().config_dir
    return load_file(config_dir, SEVERITY_FILE, SeverityConfig)
