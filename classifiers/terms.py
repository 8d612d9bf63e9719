"""Where a fixed list of terms occurs in a text: the search under the department rules,
the sensitivity lexicon and the watchlists.

Each holds hundreds to a thousand short Chinese terms and searches every post once, so
the search is a C loop over the text's code points (`classifiers._native.trie`): a trie
walked from each position where some term starts, the first character tested in a
bitmap. It reports what an Aho-Corasick automaton reports, in the same order:
`ahocorasick_rs`, which it replaced, took ~15 µs a 300-character post for the three
searches, this ~9 (benchmark posts, same machine, same run); tests/classifiers/
test_terms.py compares the two on real posts and random text.
"""

from __future__ import annotations

from collections.abc import Sequence

from classifiers import _native

__all__ = ["TermSearch"]

Match = tuple[int, int, int]  # (term index, start, end), in characters


class TermSearch:
    """The occurrences of `terms` (non-empty strings, repeats allowed) in a text."""

    def __init__(self, terms: Sequence[str]):
        self._trie = _native.trie(list(terms))  # match i is terms[i]: callers keep the list

    def overlapping(self, text: str) -> list[Match]:
        """Every occurrence of every term (a repeated term once per index), ordered by
        end, the longer first where two end together: 黑臭水体 and 黑臭 both count."""
        return _native.trie_find(self._trie, text, True)

    def leftmost_longest(self, text: str) -> list[Match]:
        """Non-overlapping occurrences from the left: at the first position where a term
        starts, the longest one (the lowest index of a repeated term), then on from its
        end. A longer phrase thus swallows a term inside it (火灾隐患 over 火灾)."""
        return _native.trie_find(self._trie, text, False)
