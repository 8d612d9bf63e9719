"""Routing (`config/routing.yaml`): which departments an event's alerts go to.

The classifier ranks departments and marks one lead (主责) and co-responsible ones (协办).
Routing starts there and then, in this order:

1. a watchlist hit whose rule names a `department` (`watchlists.yaml`) makes that
   department lead (the classifier's lead becomes co), when `watchlist_departments`;
2. every routing rule that matches (by source, keyword, region, topic or watchlist hit)
   applies in file order: `lead` replaces the lead (the old one becomes co), `co` adds
   co-responsible departments, `replace_co` drops the classifier's first;
3. a lead that is no known department, or a classifier lead scoring under
   `min_confidence` with no rule behind it, goes to the triage department (`gov-office`,
   `triage: true` in `departments.yaml`), without co-responsible ones; unknown co ids are
   dropped; at most `max_co` co-responsible departments remain.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import config as config_files
from pipeline.config import ID_PATTERN, DepartmentsFile, require_unique_ids
from pipeline.messages import DepartmentScore
from pipeline.settings import Settings

log = logging.getLogger(__name__)

ROUTING_FILE = "routing.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoutingRule(_Strict):
    """A rule matches when every condition it gives holds (each list: any of its items)."""

    id: str = Field(pattern=ID_PATTERN)
    note: str | None = None
    sources: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list, description="names under `regions`")
    topics: list[str] = Field(default_factory=list)
    watchlists: list[str] = Field(default_factory=list, description="watchlist rule ids")
    lead: str | None = Field(None, pattern=ID_PATTERN)
    co: list[str] = Field(default_factory=list)
    replace_co: bool = False

    @model_validator(mode="after")
    def _sensible(self) -> RoutingRule:
        if not (self.sources or self.keywords or self.regions or self.topics or self.watchlists):
            raise ValueError("a rule needs at least one of sources, keywords, regions, topics, "
                             "watchlists")  # fmt: skip
        if self.lead is None and not self.co:
            raise ValueError("a rule needs `lead` or `co`")
        return self


class RoutingFile(_Strict):
    """`config/routing.yaml`."""

    min_confidence: float = Field(0.2, ge=0, le=1)
    max_co: int = Field(2, ge=0)
    watchlist_departments: bool = True
    regions: dict[str, list[str]] = Field(
        default_factory=dict, description="region name → place names that mean it"
    )
    rules: list[RoutingRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> RoutingFile:
        require_unique_ids(self.rules, "routing rule")
        for rule in self.rules:
            missing = [r for r in rule.regions if r not in self.regions]
            if missing:
                raise ValueError(f"rule {rule.id}: unknown region {missing[0]!r}")
        return self


def load_routing(settings: Settings) -> RoutingFile:
    if not (settings.config_dir / ROUTING_FILE).exists():
        return RoutingFile()
    return config_files.load_file(settings.config_dir, ROUTING_FILE, RoutingFile)


def watchlist_departments(settings: Settings) -> dict[str, str]:
    """Watchlist rule id → suggested department, read from `watchlists.yaml` as data
    (its schema belongs to the classifiers; a file that does not read gives none)."""
    path = settings.config_dir / "watchlists.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return {
            str(r["id"]): str(r["department"])
            for r in data.get("rules", [])
            if isinstance(r, dict) and r.get("id") and r.get("department")
        }
    except (OSError, yaml.YAMLError, AttributeError, TypeError):
        return {}


@dataclass(frozen=True)
class RouteInput:
    """What routing looks at, from one post and its classification."""

    source: str
    text: str
    topic: str | None
    departments: Sequence[DepartmentScore]
    watchlists: Sequence[str] = ()


@dataclass(frozen=True)
class Route:
    lead: str
    co: tuple[str, ...] = ()
    reasons: list[str] = field(default_factory=list)

    @property
    def departments(self) -> list[tuple[str, str]]:
        """(department, role) pairs, lead first."""
        return [(self.lead, "lead"), *((d, "co") for d in self.co)]


class Router:
    """Routing under one config and one department catalog."""

    def __init__(
        self,
        config: RoutingFile,
        departments: DepartmentsFile,
        watchlist_departments: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.known = departments.ids()
        self.triage = departments.triage
        self.watchlist_departments = watchlist_departments or {}
        self._regions = {name: tuple(places) for name, places in config.regions.items()}

    def route(self, item: RouteInput) -> Route:
        lead, confident, co, reasons = self._from_classifier(item.departments)
        if self.config.watchlist_departments:
            for rule_id in item.watchlists:
                hinted = self.watchlist_departments.get(rule_id)
                if hinted and hinted != lead:
                    co = [lead, *co] if lead else co
                    lead, confident = hinted, True
                    reasons.append(f"watchlist:{rule_id}")
                    break
        for rule in self.config.rules:
            if self._matches(rule, item):
                lead, co, confident = self._apply(rule, lead, co, confident)
                reasons.append(f"rule:{rule.id}")
        if lead not in self.known or not confident:
            why = "unknown department" if lead not in self.known else "low confidence"
            if lead not in self.known:
                log.warning("routing: unknown department %r, sent to triage", lead)
            reasons.append(f"triage:{why}")
            return Route(self.triage, (), reasons)
        co = _unique(d for d in co if d in self.known and d != lead)
        return Route(lead, tuple(co[: self.config.max_co]), reasons)

    def _from_classifier(
        self, departments: Sequence[DepartmentScore]
    ) -> tuple[str, bool, list[str], list[str]]:
        ranked = sorted(departments, key=lambda d: (d.role != "lead", -d.score))
        if not ranked:
            return self.triage, True, [], ["classifier:none"]
        lead = ranked[0]
        co = [d.id for d in ranked[1:] if d.role == "co"]
        confident = lead.score >= self.config.min_confidence or lead.id == self.triage
        return lead.id, confident, co, [f"classifier:{lead.id}:{lead.score:g}"]

    def _matches(self, rule: RoutingRule, item: RouteInput) -> bool:
        if rule.sources and item.source not in rule.sources:
            return False
        if rule.topics and item.topic not in rule.topics:
            return False
        if rule.watchlists and not set(rule.watchlists) & set(item.watchlists):
            return False
        if rule.keywords and not any(k in item.text for k in rule.keywords):
            return False
        places = (p for r in rule.regions for p in self._regions[r])
        return not rule.regions or any(p in item.text for p in places)

    @staticmethod
    def _apply(
        rule: RoutingRule, lead: str, co: list[str], confident: bool
    ) -> tuple[str, list[str], bool]:
        if rule.replace_co:
            co = []
        if rule.lead and rule.lead != lead:
            co = [lead, *co] if not rule.replace_co else co
            lead, confident = rule.lead, True
        return lead, [*co, *rule.co], confident


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
