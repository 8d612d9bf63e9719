"""Watchlists: the press office's own rules (`config/watchlists.yaml`).

The lexicons and models decide what is sensitive in general; a watchlist says what the
press office wants to hear about *now*: the district's name next to 火灾 or 爆炸, a
school and 食物中毒, 拆迁 and 聚集, a named project during its hearing. Each rule is:

- `terms.all`: every item must occur (an item may be a list of synonyms, any of which
  will do); `terms.any`: at least one must occur; `terms.none`: none may occur;
- `near`: two terms (or lists of synonyms) within `within` characters of each other
  (the characters between the end of one and the start of the other);
- `sources`: only posts from these source ids (`config/sources.yaml`); none: all;
- `severity_floor`: a hit raises the post's severity to at least this level;
- `department`: a routing hint (department id) for the press office.

A rule needs at least one of `all`, `any` or `near`. Terms are plain substrings of the
cleaned text (simplified, half-width); ASCII letters match in any case.

**Reload without restart.** The press office edits the file while the classifier runs.
`Watchlists.match` looks at the file's modification time at most every `check_every`
seconds (default 3); when it changed, the file is parsed, validated and compiled on
the side and swapped in with one assignment, so a post is matched against either the
old rules or the new ones, never a mix. A file that does not parse or validate is
logged (once per change) and the previous rules stay in force: a typo in a watchlist
must not stop the classifier stage or silently drop every other rule.

**Speed.** All terms of all rules form one term search (`classifiers.terms`, a C
loop), run once per post with overlapping matches (so 北湖区 and 北湖 are both seen).
Only rules that contain one of the terms found are evaluated, so posts that mention no
watched term cost one search.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from classifiers.terms import TermSearch
from pipeline.config import require_unique_ids

__all__ = [
    "WATCHLISTS_FILE",
    "WatchHit",
    "WatchRule",
    "Watchlists",
    "WatchlistsFile",
]

log = logging.getLogger(__name__)

# Path relative to the config directory (also its `config check` name).
WATCHLISTS_FILE = "watchlists.yaml"

ID_PATTERN = r"^[a-z][a-z0-9-]{1,40}$"

Term = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^\S+$")]
# One term, or a list of synonyms any of which will do.
TermGroup = Term | Annotated[list[Term], Field(min_length=1)]
Level = Literal["critical", "high", "medium", "low"]
# What tells a changed file: (modification time in ns, size, inode).
_Signature = tuple[int, int, int]


# --------------------------------------------------------------------------- schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleTerms(_Strict):
    all: list[TermGroup] = Field(default_factory=list)
    any: list[Term] = Field(default_factory=list)
    none: list[Term] = Field(default_factory=list)


class Near(_Strict):
    terms: tuple[TermGroup, TermGroup]
    within: int = Field(ge=0, le=1000)


class WatchRule(_Strict):
    """One press-office rule (see the module docstring)."""

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    enabled: bool = True
    note: str = ""  # why the press office watches this, for the admin page
    terms: RuleTerms = RuleTerms()
    near: Near | None = None
    sources: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        default=None, min_length=1
    )
    severity_floor: Level | None = None
    department: str | None = Field(default=None, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _matches_something(self) -> WatchRule:
        if not (self.terms.all or self.terms.any or self.near):
            raise ValueError("a rule needs terms.all, terms.any or near")
        return self


class WatchlistsFile(_Strict):
    """Schema of `config/watchlists.yaml`."""

    rules: list[WatchRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> WatchlistsFile:
        require_unique_ids(self.rules, "rule")
        return self


# --------------------------------------------------------------------------- output


class WatchHit(NamedTuple):
    """A rule that matched a post, with the terms that made it match."""

    rule_id: str
    name: str
    terms: tuple[str, ...]
    severity_floor: str | None = None
    department: str | None = None


# --------------------------------------------------------------------------- compiled


def _group(item: str | list[str]) -> list[str]:
    return [item] if isinstance(item, str) else list(item)


@dataclass(frozen=True, slots=True)
class _Rule:
    rule: WatchRule
    all: tuple[frozenset[int], ...]
    any: frozenset[int]
    none: frozenset[int]
    near: tuple[frozenset[int], frozenset[int], int] | None
    sources: frozenset[str] | None


class _Compiled:
    """One immutable generation of rules: patterns, term search, per-term rule index."""

    def __init__(self, file: WatchlistsFile, version: str = ""):
        self.file = file
        self.version = version
        ids: dict[str, int] = {}

        def pid(term: str) -> int:
            return ids.setdefault(term.lower(), len(ids))

        def ids_of(group: str | list[str]) -> frozenset[int]:
            return frozenset(pid(t) for t in _group(group))

        rules: list[_Rule] = []
        triggers: dict[int, list[int]] = {}
        for rule in file.rules:
            if not rule.enabled:
                continue
            compiled = _Rule(
                rule=rule,
                all=tuple(ids_of(g) for g in rule.terms.all),
                any=frozenset(pid(t) for t in rule.terms.any),
                none=frozenset(pid(t) for t in rule.terms.none),
                near=(
                    (ids_of(rule.near.terms[0]), ids_of(rule.near.terms[1]), rule.near.within)
                    if rule.near
                    else None
                ),
                sources=frozenset(rule.sources) if rule.sources is not None else None,
            )
            # A rule can only match when one of its positive terms occurs: index it by
            # the terms of one requirement (any of them must be present).
            if compiled.all:
                needed = compiled.all[0]
            elif compiled.near:
                needed = compiled.near[0]
            else:
                needed = compiled.any
            for term_id in needed:
                triggers.setdefault(term_id, []).append(len(rules))
            rules.append(compiled)
        self.rules = rules
        self.triggers = triggers
        self.terms = sorted(ids, key=ids.__getitem__)
        # Terms are lower-cased above; fold the text too only if some term has letters.
        self.fold = any(t != t.upper() for t in self.terms)
        self.search = TermSearch(self.terms) if self.terms else None

    def match(self, text: str, source: str | None) -> list[WatchHit]:
        if self.search is None or not text:
            return []
        if self.fold:
            text = text.lower()
        found = self.search.overlapping(text)
        if not found:
            return []
        spans: dict[int, list[tuple[int, int]]] = {}
        for term_id, start, end in found:
            spans.setdefault(term_id, []).append((start, end))
        candidates: set[int] = set()
        triggers = self.triggers
        for term_id in spans:
            rule_ids = triggers.get(term_id)
            if rule_ids:
                candidates.update(rule_ids)
        hits: list[WatchHit] = []
        for index in sorted(candidates):
            hit = self._check(self.rules[index], spans, source)
            if hit is not None:
                hits.append(hit)
        return hits

    def _check(
        self, r: _Rule, spans: dict[int, list[tuple[int, int]]], source: str | None
    ) -> WatchHit | None:
        if r.sources is not None and source not in r.sources:
            return None
        if r.none and not r.none.isdisjoint(spans):
            return None
        matched: list[int] = []
        for group in r.all:
            present = [t for t in group if t in spans]
            if not present:
                return None
            matched.extend(present)
        if r.any:
            present = [t for t in r.any if t in spans]
            if not present:
                return None
            matched.extend(present)
        if r.near is not None:
            pair = _near(r.near, spans)
            if pair is None:
                return None
            matched.extend(pair)
        terms = tuple(dict.fromkeys(self.terms[t] for t in matched))
        rule = r.rule
        return WatchHit(rule.id, rule.name, terms, rule.severity_floor, rule.department)


def _near(
    near: tuple[frozenset[int], frozenset[int], int], spans: dict[int, list[tuple[int, int]]]
) -> tuple[int, int] | None:
    """The first pair (a term, b term) with occurrences at most `within` characters apart."""
    left, right, within = near
    for a in left:
        for a_start, a_end in spans.get(a, ()):
            for b in right:
                for b_start, b_end in spans.get(b, ()):
                    if max(b_start - a_end, a_start - b_end) <= within:
                        return a, b
    return None


# --------------------------------------------------------------------------- reloading


class Watchlists:
    """The watchlist rules of one file, reloaded when the file changes.

    `match(text, source)` gives the hits for one cleaned post. Thread-safe: a reload
    builds a new generation and swaps it in with one assignment; one thread reloads at a
    time while the others go on with the rules they have.

    At construction a missing file means no rules (watchlists are optional); an invalid
    one raises `ConfigError` when `strict` (the default: a deployment with a broken
    file should fail at start, where `yuqing config check` would also have said so),
    else it is logged and the stage starts with no rules. Later changes never raise.
    `rules` instead of `path` gives fixed rules with no file behind them (tests,
    experiments).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        rules: WatchlistsFile | None = None,
        check_every: float = 3.0,
        strict: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        if (path is None) == (rules is None):
            raise ValueError("give either a watchlists file path or rules")
        self.path = path
        self.check_every = check_every
        self.last_error: str | None = None  # why the file on disk is not in force
        self._clock = clock
        self._lock = threading.Lock()
        self._compiled = _Compiled(rules if rules is not None else WatchlistsFile())
        self._signature: _Signature | None = None  # of the file whose rules are in force
        self._rejected: _Signature | None = None  # of a file that failed to load
        self._missing = False  # the file has gone (logged once)
        self._next_check = clock() + check_every if path is not None else float("inf")
        if path is None:
            return
        signature = _signature(path)
        if signature is None:
            log.info("watchlists: %s not found; no watchlist rules", path)
            return
        try:
            self._compiled = _load(path, signature)
            self._signature = signature
        except _Invalid as exc:
            if strict:
                from pipeline.settings import ConfigError

                raise ConfigError(exc.problems) from None
            self._reject(signature, exc)

    @classmethod
    def load(
        cls, config_dir: Path | None = None, *, check_every: float = 3.0, strict: bool = True
    ) -> Watchlists:
        """The watchlists of `config_dir` (default: the process settings' config dir)."""
        if config_dir is None:
            from pipeline.settings import load_settings

            config_dir = load_settings().config_dir
        return cls(config_dir / WATCHLISTS_FILE, check_every=check_every, strict=strict)

    @classmethod
    def from_rules(cls, rules: Iterable[dict[str, Any]]) -> Watchlists:
        """Fixed rules from plain dicts, validated like the file's `rules` list."""
        return cls(rules=WatchlistsFile.model_validate({"rules": list(rules)}))

    # -- use --------------------------------------------------------------------------

    @property
    def rules(self) -> list[WatchRule]:
        """The rules in force (enabled or not)."""
        return list(self._compiled.file.rules)

    @property
    def version(self) -> str:
        """The modification time (ns) of the file the rules in force came from."""
        return self._compiled.version

    def match(self, text: str, source: str | None = None) -> list[WatchHit]:
        """The rules that `text` (cleaned title and body) from `source` matches."""
        if self._clock() >= self._next_check:
            self.reload()
        return self._compiled.match(text, source)

    def match_batch(
        self, texts: Sequence[str], sources: Sequence[str | None] | None = None
    ) -> list[list[WatchHit]]:
        """`match` for each text, in order; the file is checked for changes once."""
        if self._clock() >= self._next_check:
            self.reload()
        compiled = self._compiled
        if sources is None:
            return [compiled.match(t, None) for t in texts]
        return [compiled.match(t, s) for t, s in zip(texts, sources, strict=True)]

    # -- reloading --------------------------------------------------------------------

    def reload(self, force: bool = False) -> bool:
        """Reload the file if it changed since the rules in force were read (always,
        with `force`). True when new rules are now in force. Never raises."""
        if self.path is None or not self._lock.acquire(blocking=False):
            return False
        try:
            self._next_check = self._clock() + self.check_every
            signature = _signature(self.path)
            if signature is None:
                if not self._missing:
                    self._missing = True
                    log.error(
                        "watchlists: %s has gone; keeping the %d rules in force",
                        self.path,
                        len(self._compiled.rules),
                    )
                return False
            self._missing = False
            if not force and signature in (self._signature, self._rejected):
                return False
            try:
                compiled = _load(self.path, signature)
            except _Invalid as exc:
                self._reject(signature, exc)
                return False
            self._compiled = compiled  # the swap: one reference assignment
            self._signature, self._rejected, self.last_error = signature, None, None
            log.info("watchlists: %d rules in force from %s", len(compiled.file.rules), self.path)
            return True
        except Exception:  # never let a reload take the stage down
            log.exception("watchlists: reloading %s failed; keeping the rules in force", self.path)
            return False
        finally:
            self._lock.release()

    def _reject(self, signature: _Signature, exc: _Invalid) -> None:
        """Keep the rules in force and say why the file is not used (once per change)."""
        self._rejected = signature
        self.last_error = "; ".join(exc.problems)
        log.error(
            "watchlists: %s is invalid, keeping the %d rules in force: %s",
            self.path,
            len(self._compiled.rules),
            self.last_error,
        )


class _Invalid(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _signature(path: Path) -> _Signature | None:
    """What tells a changed file: modification time, size and inode (an editor's
    rename-into-place changes the inode even within one mtime tick)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _load(path: Path, signature: _Signature) -> _Compiled:
    """Read, validate and compile; _Invalid names file, key and problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise _Invalid([f"{path}: cannot read: {exc}"]) from None
    try:
        file = WatchlistsFile.model_validate(data if data is not None else {})
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "(top level)"
            problems.append(f"{path}: {key}: {e['msg'].removeprefix('Value error, ')}")
        raise _Invalid(problems) from None
    return _Compiled(file, version=str(signature[0]))
