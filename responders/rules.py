"""Alert rules (`config/alert_rules.yaml`): which events become alerts, at what severity.

An event's severity starts from its posts' classifications: the highest severity among
the posts that pass the relevance gate (relevance score at least `gate.min_relevance`,
or a watchlist hit). An event none of whose posts passes raises nothing, however hot.
On top of that, for an event that passes:

- watchlist floors: a hit on a rule listed under `watchlists` lifts it to that level;
- heat floors: heat at least `min_heat` lifts it to that level (see `heat`);
- a spike of its topic (posts this hour above the trailing mean + k·σ) lifts it by
  `spike.bump` levels.

Levels only go up here. An event whose result is below `min_severity` (or `none`) raises
no alert. Heat (documented in `responders/events.py`):
`heat = w_posts·log2(1 + posts) + w_sources·log2(sources) + w_velocity·log2(1 + posts in
the hour up to the event's latest post)`, so one post scores 20 with the default weights
and 200 reposts from 5 sources within an hour about 176.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import config as config_files
from pipeline.config import ID_PATTERN
from pipeline.settings import Settings

RULES_FILE = "alert_rules.yaml"
LEVELS = ("none", "low", "medium", "high", "critical")
RANK = {level: i for i, level in enumerate(LEVELS)}


def rank(level: str | None) -> int:
    return RANK.get(level or "none", 0)


def higher(a: str | None, b: str | None) -> str | None:
    """The higher of two levels (None counts as nothing at all)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if rank(a) >= rank(b) else b


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Level = Literal["low", "medium", "high", "critical"]


class Clustering(_Strict):
    """How posts are grouped into events (`responders/events.py`)."""

    max_distance: int = Field(5, ge=0, le=5, description="Hamming distance of SimHashes")
    window_hours: float = Field(72, gt=0, description="a post joins an event this recent")
    same_topic: bool = True
    shingle: int = Field(3, ge=1, le=8, description="characters per shingle")
    max_fingerprints: int = Field(16, ge=1, description="distinct texts kept per event")


class Gate(_Strict):
    min_relevance: float = Field(0.5, ge=0, le=1)
    watchlist_always: bool = True


class HeatFloor(_Strict):
    min_heat: float = Field(gt=0)
    severity: Level


class Heat(_Strict):
    weights: dict[str, float] = Field(
        default_factory=lambda: {"posts": 10.0, "sources": 10.0, "velocity": 10.0}
    )
    floors: list[HeatFloor] = Field(default_factory=list)

    @model_validator(mode="after")
    def _weights(self) -> Heat:
        unknown = set(self.weights) - {"posts", "sources", "velocity"}
        if unknown:
            raise ValueError(f"unknown heat weights: {', '.join(sorted(unknown))}")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("heat weights must not be negative")
        return self

    def score(self, posts: int, sources: int, velocity: int) -> float:
        """Heat of an event: logarithmic in each, so 200 reposts are hot but not 200
        times as hot as one; distinct sources weigh as much as the post count."""
        w = self.weights
        value = (
            w.get("posts", 10.0) * math.log2(1 + max(posts, 0))
            + w.get("sources", 10.0) * math.log2(max(sources, 1))
            + w.get("velocity", 10.0) * math.log2(1 + max(velocity, 0))
        )
        return round(value, 2)


class Spike(_Strict):
    history_hours: int = Field(24, ge=2, description="trailing hours the mean is taken over")
    k: float = Field(3.0, gt=0, description="standard deviations above the mean")
    min_posts: int = Field(10, ge=1, description="fewer posts in the hour never spike")
    bump: int = Field(1, ge=0, le=4, description="levels a spike adds")


class CoDepartments(_Strict):
    min_severity: Level = "medium"


class Reopen(_Strict):
    min_new_posts: int = Field(3, ge=1, description="posts since closing that reopen")


class AlertRulesFile(_Strict):
    """`config/alert_rules.yaml`."""

    clustering: Clustering = Clustering()
    gate: Gate = Gate()
    min_severity: Level = "low"
    heat: Heat = Heat()
    spike: Spike = Spike()
    watchlists: dict[str, Level] = Field(
        default_factory=dict, description="watchlist rule id → severity floor"
    )
    co_departments: CoDepartments = CoDepartments()
    reopen: Reopen = Reopen()

    @model_validator(mode="after")
    def _rule_ids(self) -> AlertRulesFile:
        for rule_id in self.watchlists:
            if not re.match(ID_PATTERN, rule_id):
                raise ValueError(f"watchlists: {rule_id!r} is not a rule id")
        return self


def load_rules(settings: Settings) -> AlertRulesFile:
    """The rules of the config directory; defaults when the file is absent."""
    if not (settings.config_dir / RULES_FILE).exists():
        return AlertRulesFile()
    return config_files.load_file(settings.config_dir, RULES_FILE, AlertRulesFile)


@dataclass(frozen=True)
class EventFacts:
    """What the rules look at: the event as stored after this batch."""

    severity: str | None  # highest classifier severity of posts passing the gate
    heat: float
    watchlists: tuple[str, ...] = ()
    spike: bool = False


@dataclass(frozen=True)
class Verdict:
    severity: str
    reasons: list[str] = field(default_factory=list)


class Rules:
    """The alert rules of one config."""

    def __init__(self, config: AlertRulesFile) -> None:
        self.config = config

    def passes_gate(self, relevance_score: float, watchlists: list[str] | tuple[str, ...]) -> bool:
        """Does this post count towards an alert (its severity becomes the event's)?"""
        gate = self.config.gate
        return relevance_score >= gate.min_relevance or (gate.watchlist_always and bool(watchlists))

    def evaluate(self, facts: EventFacts) -> Verdict | None:
        """The alert severity of an event, with the reasons; None: no alert."""
        if facts.severity is None:
            return None
        level, reasons = facts.severity, [f"classifier:{facts.severity}"]
        for rule_id in facts.watchlists:
            floor = self.config.watchlists.get(rule_id)
            if floor and rank(floor) > rank(level):
                level = floor
                reasons.append(f"watchlist:{rule_id}:{floor}")
        for floor in sorted(self.config.heat.floors, key=lambda f: f.min_heat):
            if facts.heat >= floor.min_heat and rank(floor.severity) > rank(level):
                level = floor.severity
                reasons.append(f"heat:{facts.heat:g}>={floor.min_heat:g}:{floor.severity}")
        if facts.spike and self.config.spike.bump:
            bumped = LEVELS[min(rank(level) + self.config.spike.bump, len(LEVELS) - 1)]
            if bumped != level:
                level = bumped
                reasons.append(f"spike:{bumped}")
        if rank(level) < rank(self.config.min_severity):
            return None
        return Verdict(level, reasons)

    def co_alerts(self, severity: str) -> bool:
        """Do co-responsible departments get an alert of their own at this severity?"""
        return rank(severity) >= rank(self.config.co_departments.min_severity)
