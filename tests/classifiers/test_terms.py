"""`classifiers.terms` against `ahocorasick_rs` (the Aho-Corasick library it replaced):
the same matches, in the same order, on real posts and on random text."""

from __future__ import annotations

import json
import random
from pathlib import Path

import ahocorasick_rs
import pytest

from classifiers.classify import Classifier
from classifiers.terms import TermSearch

CORPUS = Path(__file__).resolve().parents[2] / "classifiers/data/departments/labels.jsonl"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """300 real posts of three news sentences each, and 2,000 random texts dense in
    term characters (with letters, spaces, emoji and astral characters)."""
    lines = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    posts = ["".join(lines[i : i + 3]) for i in range(0, 900, 3)]
    rng = random.Random(11)
    pool = "".join(lines[:5])[:200] + "ab 😀\U00020000"
    return posts + ["".join(rng.choices(pool, k=rng.randint(0, 40))) for _ in range(2000)]


def _term_lists(classifier: Classifier) -> dict[str, list[str]]:
    """The three term lists the classifier searches (the sensitivity lexicon's in
    leftmost-longest mode, the others overlapping)."""
    return {
        "sensitivity": [p.text for p in classifier.sensitivity._patterns],
        "departments": list(classifier.router.rules.terms),
        "watchlists": list(classifier.watchlists._compiled.terms),
    }


def _reference(terms: list[str], overlapping: bool):  # type: ignore[no-untyped-def]
    kind = (
        ahocorasick_rs.MatchKind.Standard
        if overlapping
        else ahocorasick_rs.MatchKind.LeftmostLongest
    )
    return ahocorasick_rs.AhoCorasick(terms, matchkind=kind)


@pytest.mark.parametrize("which", ["sensitivity", "departments", "watchlists"])
@pytest.mark.parametrize("overlapping", [True, False])
def test_matches_equal_aho_corasick(
    classifier: Classifier, texts: list[str], which: str, overlapping: bool
) -> None:
    terms = _term_lists(classifier)[which]
    assert len(terms) > 50
    ours, reference = TermSearch(terms), _reference(terms, overlapping)
    find = ours.overlapping if overlapping else ours.leftmost_longest
    found = 0
    for text in texts:
        want = [tuple(m) for m in reference.find_matches_as_indexes(text, overlapping=overlapping)]
        assert find(text) == want, text
        found += len(want)
    assert found > 100, found  # the comparison saw plenty of matches


def test_repeated_nested_and_astral_terms() -> None:
    terms = ["黑臭", "黑臭水体", "水体", "黑臭", "体", "😀a", "\U00020000"]
    search, reference = TermSearch(terms), _reference(terms, True)
    for text in ["河道黑臭水体治理", "😀a😀\U00020000黑", "", "无关"]:
        want = [tuple(m) for m in reference.find_matches_as_indexes(text, overlapping=True)]
        assert search.overlapping(text) == want
    assert search.leftmost_longest("河道黑臭水体治理") == [(1, 2, 6)]
    assert search.leftmost_longest("黑臭") == [(0, 0, 2)]  # the lower of a repeated term


def test_refuses_empty_and_non_string_terms() -> None:
    with pytest.raises(ValueError):
        TermSearch(["ok", ""])
    with pytest.raises(ValueError):
        TermSearch(["ok", b"bytes"])  # type: ignore[list-item]
    assert TermSearch([]).overlapping("任何文字") == []
