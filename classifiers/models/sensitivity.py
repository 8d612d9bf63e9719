"""Sensitivity: which of the six 政务舆情 early-warning categories a post touches.

DESIGN.md names the categories (突发事件, 重大政策, 切身利益, 形象公信, 道德底线, 社会秩序).
No labelled corpus for them exists, so they come from a curated lexicon
(`config/lexicon/sensitivity.yaml`, validated by `yuqing config check`) with three kinds
of context that a bag of words misses:

- **negation and rumour denial**: "未造成人员伤亡", "网传某地发生火灾系谣言" mention an
  incident that did not happen. A negation cue shortly before a term, or a rumour cue in
  the same sentence (or a self-declared 辟谣 post), scales the term's weight down.
- **degree**: 严重, 多人, 特大 … next to a term raise its weight.
- **counts**: "致3人死亡", "30余名学生出现呕吐", "数百名业主聚集" are evidence of their own,
  and the numbers go to severity (a death in an incident is critical).

Each term has a weight in (0, 1]; a category's score is the noisy-OR of its evidence,
``1 - prod(1 - w)``, so it stays in [0, 1], grows with more and stronger evidence and
needs no training. The weights are the curator's judgement, not fitted values; the
hand-labelled examples in the tests keep them honest.

**Speed.** Classification must handle ≥ 10,000 posts/s per core in total, so this step
gets a few microseconds. The whole lexicon (terms, cues, count nouns, shadow phrases)
is one term search (`classifiers.terms`, a C loop) run once per post,
leftmost-longest, on the text itself rather than the tokens: multi-word terms (拆迁补偿,
人员伤亡) match however the segmenter splits them, and the longest match wins, which
lets "shadow" phrases (火灾隐患, 未成年, 无法) swallow the term or cue inside them.
Everything after the search only looks at the few matches; the count regexes run only
when a count noun was seen. Tokens are used for one thing: a few short terms
(`whole_word` in the lexicon, e.g. 学位, hidden in "大学位于") count only when the
tokenizer emits them as a word.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from classifiers.terms import TermSearch

__all__ = [
    "CATEGORIES",
    "LEXICON_FILE",
    "NO_SENSITIVITY",
    "Category",
    "CategoryScore",
    "Sensitivity",
    "SensitivityLexicon",
    "SensitivityScorer",
    "parse_count",
]

CATEGORIES: tuple[str, ...] = (
    "突发事件",
    "重大政策",
    "切身利益",
    "形象公信",
    "道德底线",
    "社会秩序",
)
Category = Literal["突发事件", "重大政策", "切身利益", "形象公信", "道德底线", "社会秩序"]

# Path of the lexicon relative to the config directory (also its `config check` name).
LEXICON_FILE = "lexicon/sensitivity.yaml"

# Punctuation that ends a clause (negation and degree stay inside one) and a sentence
# (rumour cues stay inside one). `clean` turns full-width ，！？；： into ASCII, so both
# forms are listed. A bare "." is left out: in Chinese posts it is mostly a decimal point.
_CLAUSE_BREAKS = "，,。！!？?；;：:\n…"
_SENTENCE_BREAKS = "。！!？?；;\n"


# --------------------------------------------------------------------------- schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Term = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^\S+$")]
Weight = Annotated[float, Field(gt=0, le=1)]
Boost = Annotated[float, Field(gt=1, le=5)]
CountKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,30}$")]


class CategorySpec(_Strict):
    """One category: its terms by weight, and whether negation/rumour cues weaken it."""

    description: str = ""
    # False for categories whose complaints are negative in form ("没有拿到补偿款").
    negatable: bool = True
    # Overrides the lexicon-wide threshold for this category.
    threshold: float | None = Field(default=None, ge=0, le=1)
    terms: dict[Weight, list[Term]] = Field(min_length=1)


class NegationSpec(_Strict):
    window: int = Field(default=6, ge=1, le=40)
    factor: float = Field(default=0.1, ge=0, le=1)
    cues: list[Term] = Field(default_factory=list)


class RumourSpec(_Strict):
    factor: float = Field(default=0.2, ge=0, le=1)
    sentence_cues: list[Term] = Field(default_factory=list)
    post_cues: list[Term] = Field(default_factory=list)


class DegreeSpec(_Strict):
    window: int = Field(default=6, ge=1, le=40)
    cues: dict[Boost, list[Term]] = Field(default_factory=dict)


class CountSpec(_Strict):
    """A count kind (deaths, crowd …): nouns after or before a number, and its evidence."""

    category: Category
    weight: Weight
    nouns: list[Term] = Field(min_length=1)
    # Single characters that count only right after an Arabic number: "1死2伤".
    short_nouns: list[Annotated[str, StringConstraints(min_length=1, max_length=1)]] = Field(
        default_factory=list
    )
    # Characters allowed between the measure word and the noun ("3名工人死亡": 工人).
    gap: int = Field(default=6, ge=0, le=12)


class SensitivityLexicon(_Strict):
    """Schema of `config/lexicon/sensitivity.yaml` (see the file's header)."""

    threshold: float = Field(default=0.4, ge=0, le=1)
    max_terms: int = Field(default=8, ge=1, le=50)
    categories: dict[Category, CategorySpec] = Field(min_length=1)
    negation: NegationSpec = NegationSpec()
    rumour: RumourSpec = RumourSpec()
    degree: DegreeSpec = DegreeSpec()
    counts: dict[CountKind, CountSpec] = Field(default_factory=dict)
    shadows: list[Term] = Field(default_factory=list)
    whole_word: list[Term] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> SensitivityLexicon:
        problems: list[str] = []
        terms: set[str] = set()
        for name, spec in self.categories.items():
            seen: dict[str, float] = {}
            for weight, words in spec.terms.items():
                for w in words:
                    if w in seen:
                        problems.append(
                            f"{name}: term {w!r} listed twice (weights {seen[w]} and {weight})"
                        )
                    seen[w] = weight
            terms |= seen.keys()
        # Every cue and shadow plays exactly one role; a term may sit in several categories.
        roles: dict[str, str] = {}
        groups = {
            "negation cue": self.negation.cues,
            "rumour sentence cue": self.rumour.sentence_cues,
            "rumour post cue": self.rumour.post_cues,
            "degree cue": [w for ws in self.degree.cues.values() for w in ws],
            "shadow": self.shadows,
        }
        for role, words in groups.items():
            for w in words:
                if w in terms:
                    problems.append(f"{w!r} is both a term and a {role}")
                elif w in roles:
                    problems.append(f"{w!r} is both a {roles[w]} and a {role}")
                roles[w] = role
        for w in self.whole_word:
            if w not in terms:
                problems.append(f"whole_word: {w!r} is not a term of any category")
        for kind, spec in self.counts.items():
            if spec.category not in self.categories:
                problems.append(f"counts.{kind}: category {spec.category} has no terms here")
            for w in spec.nouns:
                if roles.get(w, "shadow") != "shadow":
                    problems.append(f"counts.{kind}: noun {w!r} is also a {roles[w]}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# --------------------------------------------------------------------------- output


class CategoryScore(NamedTuple):
    """One reported category: (category, score in [0, 1], the terms that drove it)."""

    category: str
    score: float
    terms: tuple[str, ...]


class Sensitivity(NamedTuple):
    """A post's sensitivity: reported categories (best first) and the counts found.

    `counts` maps a count kind of the lexicon (deaths, injuries, missing, crowd) to the
    largest number stated in the post, only where no negation or rumour cue weakened it.
    Treat it as read-only. (A NamedTuple rather than a frozen dataclass: it is built
    for every post, and this is the cheapest immutable record Python has.)
    """

    categories: tuple[CategoryScore, ...] = ()
    counts: Mapping[str, int] = MappingProxyType({})

    @property
    def names(self) -> list[str]:
        """Category names, best first: the `sensitivity` field of a classification."""
        return [c.category for c in self.categories]

    @property
    def top_score(self) -> float:
        return self.categories[0].score if self.categories else 0.0

    def score(self, category: str) -> float:
        """The score of `category`, 0.0 when it is not reported."""
        for c in self.categories:
            if c.category == category:
                return c.score
        return 0.0

    def explanation(self) -> dict[str, list[str]]:
        """{category: terms} for the classification's explanation."""
        return {c.category: list(c.terms) for c in self.categories}

    def __bool__(self) -> bool:  # a tuple of two fields would always be true
        return bool(self.categories)


NO_SENSITIVITY = Sensitivity()


# --------------------------------------------------------------------------- counts

_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
    "六": 6, "七": 7, "八": 8, "九": 9, "数": 2, "几": 2,
}  # fmt: skip
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_NUMERAL_PARTS = re.compile(r"[0-9]+|.")

# A number as posts write it: 3, 30余, 二十三, 两, 数十, 上百, 近千, 多 ("多人").
_NUM = (
    r"(?:[上近逾约超]?(?:[0-9]+[十百千万]?|[零〇一二两三四五六七八九十百千万]+|[数几][十百千万]?)"
    r"[余多来]?|多)"
)
_MEASURE = r"(?:名|人|位|个|口|具|例)"
# Characters that may not sit between a number and its noun: clause breaks, digits and
# numerals (so "3人受伤、2人死亡" gives 2 deaths, not 3) and the list comma.
_GAP_EXCLUDED = re.escape(_CLAUSE_BREAKS) + r"0-9零〇一二两三四五六七八九十百千万、\s"


def parse_count(text: str) -> int:
    """The number in a count phrase's numeral: "3" → 3, "二十三" → 23, "30余" → 30,
    "1万" → 10000, "上百" → 100, "数十" → 20, "多" → 2 (several: at least two)."""
    core = text.lstrip("上近逾约超").rstrip("余多来")
    if not core:
        return 2
    if core.isascii() and core.isdigit():
        return int(core)
    total = section = 0
    digit: int | None = None
    for part in _NUMERAL_PARTS.findall(core):
        if part[0].isascii():
            digit = int(part)
        elif part in _CN_DIGITS:
            digit = _CN_DIGITS[part]
        elif part in _CN_UNITS:
            unit = _CN_UNITS[part]
            if unit == 10000:
                total += (section + (digit or 0)) * unit
                section = 0
            else:
                section += (1 if digit is None else digit) * unit
            digit = None
    return total + section + (digit or 0)


class _CountRule:
    """How to read the number around one count kind's nouns.

    The term search already found the noun (or a longer term containing it, 食物中毒 for
    中毒), so only a few characters on either side are examined: `before` must end
    exactly where the noun starts ("30余名学生|食物中毒"), `after` must start where
    it ends ("死亡|人数升至12人").
    """

    __slots__ = ("after", "before", "category", "kind", "reach", "weight")

    def __init__(self, kind: str, spec: CountSpec, category: int):
        self.kind = kind
        self.category = category
        self.weight = spec.weight
        gap = f"[^{_GAP_EXCLUDED}]"
        self.before = re.compile(f"(?P<n>{_NUM}){_MEASURE}{gap}{{0,{spec.gap}}}\\Z")
        self.after = re.compile(f"{gap}{{0,6}}?(?P<n>{_NUM}){_MEASURE}")
        self.reach = spec.gap + 12  # characters looked at before the noun

    def find(self, text: str, start: int, end: int) -> tuple[int, int, int] | None:
        """(span start, span end, number) of a count phrase around text[start:end]."""
        m = self.before.search(text, max(0, start - self.reach), start)
        if m is not None:
            return m.start(), end, parse_count(m.group("n"))
        m = self.after.match(text, end, end + 16)
        if m is not None:
            return start, m.end(), parse_count(m.group("n"))
        return None

    def find_short(self, text: str, start: int) -> tuple[int, int] | None:
        """(span start, number) of an Arabic number right before a short noun: 1死2伤."""
        i = start
        while i > 0 and "0" <= text[i - 1] <= "9":
            i -= 1
        if i == start or i < start - 6:
            return None
        return i, int(text[i:start])


# --------------------------------------------------------------------------- scorer

_NEGATION, _RUMOUR_SENTENCE, _RUMOUR_POST, _DEGREE, _SHADOW = range(1, 6)


class _Pattern:
    """What one searched pattern means: terms (category, weight), a cue, count kinds."""

    __slots__ = (
        "boost",
        "counts",
        "cue",
        "negatable",
        "plain",
        "short_count",
        "terms",
        "text",
        "whole_word",
    )

    def __init__(self, text: str):
        self.text = text
        self.terms: list[tuple[int, float]] = []
        self.cue = 0
        self.boost = 1.0
        self.counts: tuple[_CountRule, ...] = ()  # kinds whose nouns this pattern contains
        self.short_count: _CountRule | None = None  # the kind this short noun belongs to
        self.whole_word = False
        self.negatable = False  # some category of its terms is weakened by negation
        self.plain = False  # a term with no count noun inside and no whole-word check


class SensitivityScorer:
    """Scores posts against the sensitivity lexicon; see the module docstring.

    Build once per process (`SensitivityScorer.load()`; compiling takes a few ms) and
    call `score` per post. Thread-safe: scoring only reads the compiled tables.
    """

    def __init__(self, lexicon: SensitivityLexicon):
        self.lexicon = lexicon
        # Short digest of the lexicon, for the model version of a classification.
        self.digest = hashlib.sha256(lexicon.model_dump_json().encode()).hexdigest()[:12]
        self._names = [str(name) for name in lexicon.categories]
        self._negatable = [spec.negatable for spec in lexicon.categories.values()]
        self._thresholds = [
            lexicon.threshold if spec.threshold is None else spec.threshold
            for spec in lexicon.categories.values()
        ]
        self._neg_window = lexicon.negation.window
        self._neg_factor = lexicon.negation.factor
        self._rumour_factor = lexicon.rumour.factor
        self._deg_window = lexicon.degree.window
        self._max_terms = lexicon.max_terms
        self._clause = re.compile(f"[{re.escape(_CLAUSE_BREAKS)}]")
        self._sentence = re.compile(f"[{re.escape(_SENTENCE_BREAKS)}]")

        patterns: dict[str, _Pattern] = {}

        def pattern(text: str) -> _Pattern:
            if text not in patterns:
                patterns[text] = _Pattern(text)
            return patterns[text]

        for index, spec in enumerate(lexicon.categories.values()):
            for weight, words in spec.terms.items():
                for w in words:
                    p = pattern(w)
                    p.terms.append((index, weight))
                    p.negatable = p.negatable or spec.negatable
        for w in lexicon.whole_word:
            pattern(w).whole_word = True
        for cue_kind, words in (
            (_NEGATION, lexicon.negation.cues),
            (_RUMOUR_SENTENCE, lexicon.rumour.sentence_cues),
            (_RUMOUR_POST, lexicon.rumour.post_cues),
            (_SHADOW, lexicon.shadows),
        ):
            for w in words:
                pattern(w).cue = cue_kind
        for boost, words in lexicon.degree.cues.items():
            for w in words:
                p = pattern(w)
                p.cue, p.boost = _DEGREE, boost
        rules = {
            kind: _CountRule(kind, spec, self._names.index(spec.category))
            for kind, spec in lexicon.counts.items()
        }
        for kind, count in lexicon.counts.items():
            for noun in count.nouns:
                pattern(noun)
            for noun in count.short_nouns:
                pattern(noun).short_count = rules[kind]
        # A pattern looks for counts when it contains a noun of the kind, so 食物中毒 (a
        # longer term that swallows 中毒) still finds "30名学生食物中毒".
        for p in patterns.values():
            p.counts = tuple(
                rules[kind]
                for kind, count in lexicon.counts.items()
                if any(n in p.text for n in count.nouns)
            )
        for p in patterns.values():
            p.plain = bool(p.terms) and not (p.counts or p.short_count or p.whole_word)
        self._patterns = list(patterns.values())
        texts = [p.text for p in self._patterns]
        # Case-fold only when some pattern has cased letters (Chinese has none).
        self._fold = any(t != t.lower() for t in texts)
        if self._fold:
            texts = [t.lower() for t in texts]
        self._search = TermSearch(texts)

    # -- construction ---------------------------------------------------------------

    @classmethod
    def from_file(cls, path: Path) -> SensitivityScorer:
        """Load and compile a lexicon file; ConfigError names file, key and problem."""
        from pipeline.config import load_file

        return cls(load_file(path.parent, path.name, SensitivityLexicon))

    @classmethod
    def load(cls, config_dir: Path | None = None) -> SensitivityScorer:
        """The lexicon under `config_dir` (default: the process settings' config dir)."""
        if config_dir is None:
            from pipeline.settings import load_settings

            config_dir = load_settings().config_dir
        return cls.from_file(config_dir / LEXICON_FILE)

    # -- scoring --------------------------------------------------------------------

    def score(self, text: str, tokens: Sequence[str] | None = None) -> Sensitivity:
        """The sensitivity of one cleaned post (title and body).

        `tokens` are the post's tokens from the Tokenizer; they are only consulted when
        a `whole_word` term matches, and segmented here (rjieba) if not given.
        """
        if not text:
            return NO_SENSITIVITY
        if self._fold:
            text = text.lower()
        matches = self._search.leftmost_longest(text)
        if not matches:
            return NO_SENSITIVITY

        # Pass 1: sort the matches into term hits, cues and count phrases.
        patterns = self._patterns
        hits: list[tuple[_Pattern, int, int]] = []
        counts_found: list[tuple[_CountRule, int, int, int]] = []  # rule, start, end, n
        negations: list[int] = []  # end offsets of negation cues
        rumours: list[tuple[int, int]] = []
        degrees: list[tuple[int, int, float]] = []
        post_rumour = False
        words: Sequence[str] | None = None
        for index, start, end in matches:
            p = patterns[index]
            if p.plain:  # the common case: a term and nothing else
                hits.append((p, start, end))
                continue
            if p.counts:
                for rule in p.counts:
                    found = rule.find(text, start, end)
                    if found is not None:
                        _add_count(counts_found, rule, *found)
            elif p.short_count is not None:
                short = p.short_count.find_short(text, start)
                if short is not None:
                    _add_count(counts_found, p.short_count, short[0], end, short[1])
            if p.terms:
                if p.whole_word:
                    if words is None:
                        words = _words(text, tokens)
                    if p.text not in words:
                        continue
                hits.append((p, start, end))
            elif p.cue == _NEGATION:
                negations.append(end)
            elif p.cue == _DEGREE:
                degrees.append((start, end, p.boost))
            elif p.cue == _RUMOUR_SENTENCE:
                rumours.append((start, end))
            elif p.cue == _RUMOUR_POST:
                post_rumour = True
        if not hits and not counts_found:
            return NO_SENSITIVITY

        # Pass 2: weigh each piece of evidence in its context.
        best: dict[int, dict[str, float]] = {}  # category → {term: strongest weight}
        negatable = self._negatable
        weakening = bool(negations or rumours or post_rumour)
        context = bool(degrees) or weakening
        for p, start, end in hits:
            if context:
                boost = self._boost(text, start, end, degrees) if degrees else 1.0
                factor = (
                    self._weakening(text, start, end, negations, rumours, post_rumour)
                    if weakening and p.negatable
                    else 1.0
                )
            else:
                boost = factor = 1.0
            for category, weight in p.terms:
                if boost > 1.0:
                    weight = 1.0 - (1.0 - weight) ** boost
                if factor < 1.0 and negatable[category]:
                    weight *= factor
                terms = best.get(category)
                if terms is None:
                    best[category] = {p.text: weight}
                elif weight > terms.get(p.text, 0.0):
                    terms[p.text] = weight
        counts: dict[str, int] = {}
        redundant: set[str] = set()  # terms inside a count phrase: left out of explanations
        for rule, start, end, n in counts_found:
            weight = rule.weight
            label = text[start:end]
            if weakening and negatable[rule.category]:
                factor = self._weakening(text, start, end, negations, rumours, post_rumour)
                weight *= factor
            else:
                factor = 1.0
            if factor == 1.0 and n > counts.get(rule.kind, 0):
                counts[rule.kind] = n
            terms = best.setdefault(rule.category, {})
            terms[label] = max(weight, terms.get(label, 0.0))
            redundant.update(p.text for p, s, e in hits if start <= s and e <= end)

        # Noisy-OR per category; report those at or above their threshold.
        reported: list[CategoryScore] = []
        thresholds = self._thresholds
        for category, terms in best.items():
            miss = 1.0
            for w in terms.values():
                miss *= 1.0 - w
            if 1.0 - miss >= thresholds[category]:
                shown = self._shown(terms, redundant)
                score = round(1.0 - miss, 4)
                reported.append(_new_tuple(CategoryScore, (self._names[category], score, shown)))
        if not reported and not counts:
            return NO_SENSITIVITY
        if len(reported) > 1:
            reported.sort(key=_by_score, reverse=True)
        return _new_tuple(Sensitivity, (tuple(reported), counts))

    def score_batch(
        self, texts: Iterable[str], tokens: Iterable[Sequence[str] | None] | None = None
    ) -> list[Sensitivity]:
        """`score` of each text, in order; `tokens` aligned with `texts` when given."""
        if tokens is None:
            return [self.score(t) for t in texts]
        return [self.score(t, toks) for t, toks in zip(texts, tokens, strict=True)]

    # -- context --------------------------------------------------------------------

    def _shown(self, terms: dict[str, float], redundant: set[str]) -> tuple[str, ...]:
        """The explanation: the strongest terms first, without cancelled ones."""
        if len(terms) == 1:
            ((term, weight),) = terms.items()
            return (term,) if weight >= 0.05 and term not in redundant else ()
        ranked = sorted(terms.items(), key=_by_weight, reverse=True)
        return tuple([t for t, w in ranked if w >= 0.05 and t not in redundant][: self._max_terms])

    def _weakening(
        self,
        text: str,
        start: int,
        end: int,
        negations: list[int],
        rumours: list[tuple[int, int]],
        post_rumour: bool,
    ) -> float:
        """The factor that negation and rumour cues apply to evidence at text[start:end]
        (1.0 when none applies; used only in `negatable` categories)."""
        factor = 1.0
        if negations and self._negated(text, start, negations):
            factor *= self._neg_factor
        if post_rumour or (rumours and self._same_sentence(text, start, end, rumours)):
            factor *= self._rumour_factor
        return factor

    def _negated(self, text: str, start: int, negations: list[int]) -> bool:
        """A negation cue ends within the window before `start`, in the same clause."""
        window = self._neg_window
        clause = self._clause
        return any(
            cue_end <= start
            and start - cue_end <= window
            and clause.search(text, cue_end, start) is None
            for cue_end in negations
        )

    def _same_sentence(
        self, text: str, start: int, end: int, rumours: list[tuple[int, int]]
    ) -> bool:
        sentence = self._sentence
        for cue_start, cue_end in rumours:
            if cue_end <= start:
                if sentence.search(text, cue_end, start) is None:
                    return True
            elif sentence.search(text, end, cue_start) is None:
                return True
        return False

    def _boost(
        self, text: str, start: int, end: int, degrees: list[tuple[int, int, float]]
    ) -> float:
        """The strongest degree cue within the window on either side, same clause."""
        window, clause = self._deg_window, self._clause
        boost = 1.0
        for cue_start, cue_end, cue_boost in degrees:
            if cue_boost <= boost:
                continue
            if cue_end <= start:
                if start - cue_end <= window and clause.search(text, cue_end, start) is None:
                    boost = cue_boost
            elif cue_start - end <= window and clause.search(text, end, cue_start) is None:
                boost = cue_boost
        return boost


def _add_count(
    found: list[tuple[_CountRule, int, int, int]], rule: _CountRule, start: int, end: int, n: int
) -> None:
    """Record a count phrase unless it is zero or overlaps one of the same kind already
    found ("30余名学生食物中毒送医" is one count, reached from 中毒 and from 送医)."""
    if n <= 0:
        return
    for other, s, e, _ in found:
        if other is rule and s < end and start < e:
            return
    found.append((rule, start, end, n))


# Builds a NamedTuple from a tuple of its fields without the Python-level `__new__`
# (about 0.3 µs less per record on the development machine; records are built per post).
_new_tuple = tuple.__new__


def _by_score(c: CategoryScore) -> float:
    return c.score


def _by_weight(item: tuple[str, float]) -> float:
    return item[1]


def _words(text: str, tokens: Sequence[str] | None) -> Sequence[str]:
    """The post's words for `whole_word` checks. A post has one or two such checks at
    most, so the token list is searched as it is (building a set costs more)."""
    if tokens is not None:
        return tokens
    import rjieba

    return rjieba.cut(text)
