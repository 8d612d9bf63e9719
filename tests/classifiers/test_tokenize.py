"""Tokenizer: user dictionary, stopwords, filtering, all three backends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from classifiers.text import prepare
from classifiers.tokenize import (
    DEFAULT_BACKEND,
    NEGATION_AND_DEGREE,
    LexiconError,
    Tokenizer,
    UserWord,
    chinese_stopwords,
    default_lexicon_dir,
    load_lexicon,
)
from pipeline.config import DepartmentsFile, load_file

CONFIG = Path(__file__).resolve().parents[2] / "config"
LEXICON = CONFIG / "lexicon"
BACKENDS = ("native", "rjieba", "jieba")

POLICY_TERMS = [
    "疏解整治",
    "留白增绿",
    "开墙打洞",
    "河长制",
    "街巷长制",
    "双随机一公开",
    "一网通办",
    "医药分开",
]


@pytest.fixture(scope="module", params=BACKENDS)
def tokenizer(request: pytest.FixtureRequest) -> Tokenizer:
    """One tokenizer per backend (Python jieba takes ~1 s to load)."""
    return Tokenizer(LEXICON, backend=request.param)


@pytest.fixture(scope="module")
def rjieba_filtered() -> Tokenizer:
    return Tokenizer(LEXICON, drop_stopwords=True, drop_numbers=True)


def departments_terms() -> list[str]:
    """Every Chinese name and remit term in config/departments.yaml."""
    deps = load_file(CONFIG, "departments.yaml", DepartmentsFile).departments
    terms = [t for d in deps for t in (d.name, *d.remit)]
    return [t for t in dict.fromkeys(terms) if re.search("[\u4e00-\u9fff]", t)]


# ------------------------------------------------------------------ user dictionary


def test_default_backend_is_native() -> None:
    assert DEFAULT_BACKEND == "native"
    assert Tokenizer(LEXICON).backend == "native"


@pytest.mark.parametrize("term", POLICY_TERMS)
def test_policy_terms_are_single_tokens_in_sentences(tokenizer: Tokenizer, term: str) -> None:
    text = f"关于{term}的落实情况，居民反映{term}工作还需加强。"
    assert tokenizer.tokenize(text).count(term) == 2


def test_policy_terms_in_a_real_post(tokenizer: Tokenizer) -> None:
    text = prepare(
        "街道环境",
        "我们小区门口开墙打洞现象严重，留白增绿做得不好，街巷长制没落实，"
        "不过一网通办确实方便，疏解整治以后胡同干净了。",
    )
    tokens = tokenizer.tokenize(text)
    for term in ("开墙打洞", "留白增绿", "街巷长制", "一网通办", "疏解整治"):
        assert term in tokens


def test_every_department_term_is_in_the_lexicon() -> None:
    """departments.yaml and the lexicon must not drift apart."""
    words = {e.word for e in load_lexicon(LEXICON)}
    missing = [t for t in departments_terms() if t not in words]
    assert not missing, f"add to config/lexicon/departments.txt: {missing}"


def test_every_department_term_comes_out_whole(tokenizer: Tokenizer) -> None:
    broken = {}
    for term in departments_terms():
        if tokenizer.cut(term) != [term] or term not in tokenizer.tokenize(f"关于{term}的问题"):
            broken[term] = tokenizer.cut(f"关于{term}的问题")
    assert not broken


def test_every_lexicon_word_comes_out_whole_on_its_own(tokenizer: Tokenizer) -> None:
    broken = [w for w in sorted(tokenizer.user_words) if tokenizer.cut(w) != [w]]
    assert not broken


def test_lexicon_files_are_plain_jieba_format() -> None:
    """jieba's own `load_userdict` must be able to read the files too: no comments."""
    files = sorted(LEXICON.glob("*.txt"))
    assert files
    entry = re.compile(r"^\S+( [0-9]+)?( [a-z]+)?$")
    for path in files:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert entry.match(line), f"{path.name}:{lineno}: {line!r}"


# ------------------------------------------------------------------ lexicon loader


def test_load_lexicon_parses_freq_and_tag(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("乙词 5\n甲词 n\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("\ufeff甲词 10 nz\n\n  丙词  \n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("不是词典", encoding="utf-8")
    assert load_lexicon(tmp_path) == [
        UserWord("甲词", 10, "nz"),  # a.txt first; its entry wins over b.txt's
        UserWord("丙词"),
        UserWord("乙词", 5),
    ]


def test_load_lexicon_reports_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("好词\n两个 词 在一行 n\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"bad\.txt:2"):
        load_lexicon(tmp_path)


def test_missing_lexicon_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="lexicon"):
        Tokenizer(tmp_path / "nope")


def test_default_lexicon_dir_follows_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lexicon").mkdir()
    (tmp_path / "lexicon" / "x.txt").write_text("龘龘词\n", encoding="utf-8")
    monkeypatch.setenv("YUQING_CONFIG_DIR", str(tmp_path))
    assert default_lexicon_dir() == tmp_path / "lexicon"
    assert Tokenizer().user_words == {"龘龘词"}


def test_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend"):
        Tokenizer(LEXICON, backend="thulac")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- filtering


def test_stopword_list_comes_from_the_package() -> None:
    words = chinese_stopwords()
    assert len(words) > 700
    assert {"的", "了", "我们", "因为"} <= words
    assert "，" in words and "," in words  # half-width forms added


def test_stopwords_dropped_only_when_asked(rjieba_filtered: Tokenizer) -> None:
    text = "我们的小区因为施工所以很吵，但是居民不满意"
    plain = Tokenizer(LEXICON).tokenize(text)
    assert {"我们", "的", "因为", "所以", "但是"} <= set(plain)
    filtered = rjieba_filtered.tokenize(text)
    assert not {"我们", "的", "因为", "所以", "但是"} & set(filtered)
    assert {"小区", "施工", "居民"} <= set(filtered)


def test_negation_and_degree_words_kept(rjieba_filtered: Tokenizer) -> None:
    assert {"不", "很", "最", "无"} <= NEGATION_AND_DEGREE
    tokens = rjieba_filtered.tokenize("态度很 差，最 生气的是不 处理，无 回应")
    assert {"很", "最", "不", "无"} <= set(tokens)
    dropped = Tokenizer(LEXICON, drop_stopwords=True, keep_words=()).tokenize("服务很差 不 处理")
    assert "很" not in dropped and "不" not in dropped


def test_user_words_never_dropped(tmp_path: Path) -> None:
    tok = Tokenizer(LEXICON, drop_stopwords=True, extra_stopwords={"开墙打洞", "扬尘"})
    assert tok.tokenize("开墙打洞和扬尘") == ["开墙打洞", "扬尘"]
    tok = Tokenizer(LEXICON, drop_stopwords=True, extra_stopwords={"工地"})
    assert "工地" not in tok.tokenize("工地扬尘")


def test_punctuation_and_whitespace(tokenizer: Tokenizer) -> None:
    text = "什么！！！真的……太离谱了——\n扬尘 (噪声) [手机号]、“垃圾”。"
    tokens = tokenizer.tokenize(text)
    assert not [t for t in tokens if not any(c.isalnum() for c in t)]
    assert "扬尘" in tokens and "手机号" in tokens
    keep = Tokenizer(LEXICON, backend=tokenizer.backend, drop_punctuation=False)
    kept = keep.tokenize(text)
    assert "！" in kept and "…" in kept and "“" in kept
    assert not [t for t in kept if t.isspace()]


def test_numbers_dropped_when_asked(rjieba_filtered: Tokenizer) -> None:
    text = "2018年PM2.5超标3.5倍，达到50%，拨打12345热线和12345"
    plain = Tokenizer(LEXICON).tokenize(text)
    assert {"2018", "3.5", "50%"} <= set(plain)
    tokens = rjieba_filtered.tokenize(text)
    assert not {"2018", "3.5", "50%"} & set(tokens)
    assert "12345" in tokens and "12345热线" in tokens and "PM2.5" in tokens


# ------------------------------------------------------------------ batch, backends


SENTENCES = [
    "孩子今年幼升小，户口和房产都在本区，却被划到三公里外的学校。",
    "工地门口大货车乱停乱放，渣土车不苫盖，扬尘污染严重。",
    "区政府召开常务会议，研究部署城市更新和背街小巷治理工作。",
    "公司已经拖欠我们三个月工资，去劳动监察大队反映也没有结果。",
    "",
    "The district office replied within 48 hours.",
]


def test_batch_equals_single(tokenizer: Tokenizer) -> None:
    assert tokenizer.tokenize_batch(SENTENCES) == [tokenizer.tokenize(s) for s in SENTENCES]
    assert tokenizer.tokenize_batch(iter(SENTENCES[:2])) == [
        tokenizer.tokenize(s) for s in SENTENCES[:2]
    ]
    assert tokenizer.tokenize_batch([]) == []


def test_backends_agree_with_hmm(tokenizer: Tokenizer) -> None:
    """rjieba and the native backend are jieba's algorithm and dictionary: the same
    words on ordinary text (tests/classifiers/test_segment.py: on much more)."""
    reference = Tokenizer(LEXICON, backend="rjieba")
    for s in SENTENCES:
        assert tokenizer.tokenize(s) == reference.tokenize(s)


def test_sensible_segmentation(tokenizer: Tokenizer) -> None:
    tokens = tokenizer.tokenize(SENTENCES[1])
    assert {"工地", "门口", "乱停乱放", "渣土车", "扬尘污染", "严重"} <= set(tokens)
    assert tokenizer.tokenize(SENTENCES[-1])[:3] == ["The", "district", "office"]


@pytest.mark.parametrize("hmm", [True, False])
def test_hmm_off_also_works(hmm: bool) -> None:
    for backend in BACKENDS:
        tok = Tokenizer(LEXICON, backend=backend, hmm=hmm)
        assert "街巷长制" in tok.tokenize("街巷长制落实到位")


def test_odd_input(tokenizer: Tokenizer) -> None:
    assert tokenizer.tokenize("") == [] and tokenizer.cut("") == []
    assert tokenizer.tokenize("   \n\t ") == []
    assert tokenizer.tokenize("\x00\x01") in ([], ["\x00", "\x01"])
    assert tokenizer.tokenize("😀👍") in ([], ["😀", "👍"], ["😀👍"])


def test_huge_input() -> None:
    tok = Tokenizer(LEXICON)
    text = prepare(None, "小区门口开墙打洞，扬尘噪声严重。" * 60_000)  # ~1 MB
    tokens = tok.tokenize(text)
    assert tokens.count("开墙打洞") == 60_000


def test_repr_names_the_options() -> None:
    assert "native" in repr(Tokenizer(LEXICON)) and "user_words=" in repr(Tokenizer(LEXICON))
