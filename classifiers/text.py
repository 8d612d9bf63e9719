"""Text preparation: cleaning crawled posts and masking personal data.

Every post passes through here before a model, the database or a person sees it, so two
things matter more than elegance:

- **Speed.** The classifier stage must handle ≥ 10,000 posts/s per core in total, so
  cleaning and masking get a few microseconds per post. Everything is a precompiled
  regular expression, a C-level `str` method or one C pass over the characters
  (`_native.chars`: symbols and emoji dropped, full-width ASCII made half-width,
  traditional characters noticed, by `_char_table`); rare steps (HTML, entities, links,
  mentions, e-mail, forum boilerplate) sit behind a cheap `in` test or one regex
  search, so ordinary text pays little for them. No Python loop runs per character.
  Patterns start with a literal or a character class wherever possible: that lets the
  regex engine skip through Chinese text to candidate positions instead of trying
  every pattern at every character. `benchmarks/segmentation.py` measures it; on a
  2-core machine where Python jieba segments ~880 posts/s (slower than DESIGN's
  reference), `prepare` = `clean` + masking costs about 9 µs per plain 300-character
  post and 17 µs on the benchmark's noisier mix (markup, links, emoji, traditional
  characters, personal data): clean ~7 / ~12.5 µs, `mask_personal` ~7 / ~11 µs.
- **Safety.** Patterns that scan runs of digits or ASCII letters are anchored with
  look-behinds so each run is tried from its start only: a 1 MB line of digits or
  letters costs linear time, never quadratic backtracking (tests cover such inputs).

Crawlers import `clean` and `mask_personal` as well (DESIGN: Layout), so this module only
depends on the standard library, OpenCC and the package's own C loop
(`classifiers._native.chars`, the character-level part of cleaning). OpenCC is imported
on the first call of `clean` (about 70 ms once: it also derives the set of
traditional-only characters and the character table).

De-identification rule (district): masked values are replaced by typed placeholders,
never kept partially (`138****5678` still narrows a person down inside a small
community and leaks the carrier and region). The placeholders contain no digits, so
`mask_personal` is idempotent and its output is never matched again:

=============  =============================================================
placeholder    what is masked
=============  =============================================================
``[手机号]``   mainland mobile numbers 1[3-9]x-xxxx-xxxx, optional +86/0086,
               spaces or dashes between groups
``[电话]``     landlines with area code (010-12345678, (0755)1234567, 转 ext),
               and bare 7-8 digit numbers right after 电话/座机/固话/Tel
``[身份证号]`` 18-digit resident ID numbers whose GB 11643 check digit is right,
               15-digit legacy numbers with a plausible birth date
``[银行卡号]`` 16-19 digit numbers (optionally grouped by 4) that pass Luhn
``[邮箱]``     e-mail addresses
``[车牌号]``   licence plates: province + letter + 5 characters (京A·12345),
               new-energy 6 characters (京AD12345), 学/警/港/澳/挂/领 plates
=============  =============================================================

Known limits, by design: Luhn accepts one random digit string in ten, so about 10 % of
16-19 digit order or tracking numbers are masked as bank cards (over-masking is the
safe failure). Public service numbers are left alone: 5-digit hotlines (12345, 12369)
and 400/800 numbers are not personal. Mobile numbers written with other separators
(dots, words between digits) are not recognised.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from classifiers import _native
from classifiers.terms import TermSearch

__all__ = [
    "PLACEHOLDERS",
    "cjk_ratio",
    "clean",
    "clean_and_mask",
    "has_traditional",
    "id_checksum_ok",
    "is_mostly_chinese",
    "luhn_ok",
    "mask_personal",
    "prepare",
    "to_simplified",
]

PLACEHOLDERS = {
    "mobile": "[手机号]",
    "landline": "[电话]",
    "id_card": "[身份证号]",
    "bank_card": "[银行卡号]",
    "email": "[邮箱]",
    "plate": "[车牌号]",
}

# --------------------------------------------------------------------------- cleaning

# HTML. Script/style bodies, comments and CDATA go entirely (see `_drop_spans`);
# block-level tags become line breaks so that paragraphs do not run into each other;
# every other tag disappears. `[^<>]` keeps the tag patterns linear (a scan stops at
# the next "<"), and a tag must start with a letter so "温度<30" survives.
_HTML_SPAN_OPEN = re.compile(
    r"<(?:(script|style|noscript|template)\b[^<>]{0,2000}>|(!--)|(!\[CDATA\[))", re.IGNORECASE
)
_HTML_SPAN_CLOSE = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "script": r"</script\s*>",
        "style": r"</style\s*>",
        "noscript": r"</noscript\s*>",
        "template": r"</template\s*>",
        "!--": r"-->",
        "![cdata[": r"\]\]>",
    }.items()
}
_HTML_BLOCK = re.compile(
    r"</?(?:br|p|div|li|ul|ol|tr|td|th|table|h[1-6]|blockquote|section|article|hr)\b[^<>]*>",
    re.IGNORECASE,
)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>|<![A-Za-z][^<>]*>")
# Forum BBCode: [quote], [b], [img]…[/img] (the URL inside an [img] or [attach] is noise).
_BBCODE_SPAN_OPEN = re.compile(
    r"\[(img|attach|media|flash|audio)(?:=[^\]\n]{0,500})?\]", re.IGNORECASE
)
_BBCODE_SPAN_CLOSE = {
    name: re.compile(rf"\[/{name}\]", re.IGNORECASE)
    for name in ("img", "attach", "media", "flash", "audio")
}
_BBCODE_TAG = re.compile(
    r"\[/?(?:b|i|u|s|quote|code|url|size|color|font|align|hide|table|tr|td|list|\*|p|"
    r"indent|backcolor|email|hr|float|free|sup|sub|strike|postbg)(?:=[^\]\n]{0,200})?\]",
    re.IGNORECASE,
)


def _drop_spans(text: str, opener: re.Pattern[str], closers: dict[str, re.Pattern[str]]) -> str:
    """`text` without the spans from each opener match to its closer.

    Written as a loop rather than one `<x>.*?</x>` regex, which would rescan to the end
    of the text for every unclosed opener (quadratic: a page of unclosed "<!--" would
    hang the stage). Here each character is scanned once: at the first opener without a
    closer the loop stops and leaves the rest (and that opener) to the tag stripper.
    """
    out: list[str] = []
    pos = 0
    while (m := opener.search(text, pos)) is not None:
        name = next(g for g in m.groups() if g).lower()
        close = closers[name].search(text, m.end())
        if close is None:
            break
        out.append(text[pos : m.start()])
        out.append(" ")
        pos = close.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


# Characters that carry no words: C0/C1 controls (tab and newline kept), lone
# surrogates (from undecodable bytes), zero-width and bidi marks, variation selectors,
# private use, pictographs/emoji/dingbats/arrows/box drawing/geometric shapes, and the
# whole of plane 1 (emoji, historic scripts) and planes 14-16 (tags, private use).
# Weibo's bracketed emoticons ([怒], [泪]) are words and stay.
_SYMBOLS_BMP = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad"  # controls (keep \t \n \r), soft hyphen
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"  # zero-width, bidi
    "\u20e3\u2122\u2139\u00a9\u00ae"  # keycap, ™, ℹ, ©, ®
    "\u2190-\u21ff\u2300-\u23ff\u2460-\u24ff\u2500-\u27bf\u2900-\u297f\u2b00-\u2bff"
    "\u3030\u303d\u3297\u3299"
    "\ud800-\udfff\ue000-\uf8ff\ufe00-\ufe0f\ufff0-\uffff"
)
_SYMBOLS_ASTRAL = ((0x10000, 0x1FFFF), (0xE0000, 0x10FFFF))


# Full-width ASCII (ＡＢＣ１２３＠＃) becomes half-width, but the full-width forms that are
# ordinary Chinese punctuation (，！？：；（）) stay as they are. U+3000 becomes a space.
_CHINESE_PUNCT_FF = "，！？：；（）"
_FULLWIDTH_MAP = str.maketrans(
    {
        **{cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F) if chr(cp) not in _CHINESE_PUNCT_FF},
        0x3000: 0x20,
    }
)
_FULLWIDTH_ANY = re.compile(
    "[" + "".join(chr(k) for k in _FULLWIDTH_MAP) + "]+"  # guard: skip translate if none
)


def _half_width(text: str) -> str:
    """Full-width ASCII made half-width, run by run.

    `str.translate` over a whole non-ASCII text costs a dictionary lookup per character
    (about 55 µs for 300 characters); a regex finds the few full-width runs in C and
    only those are translated.
    """
    return _FULLWIDTH_ANY.sub(lambda m: m[0].translate(_FULLWIDTH_MAP), text)


# What `clean` does to a character, in `_char_table` (0: keeps it); the same codes as
# `_native.chars`' enum.
_DROP, _HALF_WIDTH, _TRADITIONAL = 1, 2, 3


@lru_cache(maxsize=1)
def _char_table() -> bytes:
    """One byte per code point: symbols dropped, full-width ASCII made half-width,
    traditional-only characters noticed (the text then goes through OpenCC).

    `clean` does the three in one pass in C (`classifiers._native.chars`, ~2 µs for
    300 characters) where three regex scans and a translate cost ~17 µs on text with
    full-width digits, as People's Daily writes them. Built once (~20 ms).
    """
    table = bytearray(0x110000)
    bmp = "".join(map(chr, range(0x10000)))
    for m in re.finditer("[" + _SYMBOLS_BMP + "]", bmp):
        table[ord(m[0])] = _DROP
    for lo, hi in _SYMBOLS_ASTRAL:
        table[lo : hi + 1] = bytes([_DROP]) * (hi + 1 - lo)
    for cp, half in _FULLWIDTH_MAP.items():
        # `_native.chars` computes the half-width form itself, by this very rule.
        if half != (0x20 if cp == 0x3000 else cp - 0xFEE0):  # pragma: no cover
            raise AssertionError(f"U+{cp:04X} does not map by the full-width rule")
        table[cp] = _HALF_WIDTH
    for ch in _traditional_chars():
        table[ord(ch)] = _TRADITIONAL
    return bytes(table)


# Links. Each pattern starts with a character class or literal so that the regex engine
# can skip quickly through Chinese text to candidate positions.
_URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"
_URL_SCHEME = re.compile(r"[HhFf](?:[Tt][Tt][Pp][Ss]?|[Tt][Pp])://" + _URL_CHARS)
_URL_WWW = re.compile(r"[Ww](?<![A-Za-z0-9.].)[Ww][Ww]\.[A-Za-z0-9\-]+\." + _URL_CHARS)
_URL_SHORT = re.compile(r"[tudTUD](?<![A-Za-z0-9.].)(?:\.cn|rl\.cn|wz\.cn)/[A-Za-z0-9]+")

# Forum and app boilerplate: (a literal every match contains, pattern, replacement).
# The `in` test skips the pattern for ordinary text; patterns begin with a literal
# wherever possible, which the regex engine searches for quickly.
_DATE_TIME = r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?(?:\s*\d{1,2}:\d{2}(?::\d{2})?)?"
_BOILERPLATE: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("本帖最后由", re.compile(r"本帖最后由\s*\S{1,40}?\s*于\s*" + _DATE_TIME + r"\s*编辑"), " "),
    (
        "原帖由",
        re.compile(r"(?:引用\s*[:：]\s*)?原帖由\s*\S{1,40}?\s*于\s*" + _DATE_TIME + r"\s*发表"),
        " ",
    ),
    # Quote header "张三 发表于 2018-5-26 11:27": the name only when it starts a line or
    # follows a space, so running text before 发表于 is never eaten.
    ("发表于", re.compile(r"(?:(?<=\s)|^)(?:\S{1,30}\s+)?发表于\s*" + _DATE_TIME, re.M), " "),
    ("发表于", re.compile(r"发表于\s*" + _DATE_TIME), " "),
    (
        "回复",
        re.compile(
            r"回复\s*(?:【\s*\d+\s*楼\s*】|#\s*\d+\s*楼?|\d+\s*#|第?\d+\s*楼)"
            r"(?:\s*\S{1,30}?\s*的帖子)?\s*[:：]?"
        ),
        " ",
    ),
    ("的帖子", re.compile(r"回复\s*\S{1,30}?\s*的帖子\s*[:：]?"), " "),
    (
        "发自我的",
        re.compile(
            r"发自我的\s*[\w \-+]{0,20}?(?:\s*(?:iPhone|iPad|Android|手机|平板|客户端|设备"
            r"|小米|华为|荣耀|OPPO|vivo|魅族))+(?:[ ]?[A-Za-z0-9+\-]{1,10}){0,3}"
        ),
        " ",
    ),
    (
        "来自",
        re.compile(
            r"来自\s*[:：]?\s*[\w !\-]{0,20}?"
            r"(?:\s*(?:客户端|手机版|移动版|[Mm]obile|iPhone|Android|App)(?![A-Za-z]))+"
        ),
        " ",
    ),
    ("Sent from", re.compile(r"Sent from my [\w ]{1,20}"), " "),
    (
        "",  # several literals, each alternative starts with one
        re.compile(
            r"\[复制链接\]|复制链接|使用道具\s*举报|只看该作者|电梯直达|显示全部楼层|倒序浏览|阅读模式"
            r"|查看\s*[:：]\s*\d+\s*[|｜]\s*回复\s*[:：]\s*\d+"
            r"|展开全文(?:\s*c(?![A-Za-z]))?|收起全文(?:\s*d(?![A-Za-z]))?"
            r"|O网页链接|网页链接|该帖被管理员或版主屏蔽"
        ),
        " ",
    ),
)
# One search that says whether any boilerplate pattern can match at all: most posts
# have none, and one scan for the literals they start with (a C loop, `TermSearch`) is
# cheaper than a dozen substring tests, or than the regex alternation of the literals
# it replaced (0.6 against 1.6 µs a benchmark post).
_BOILERPLATE_ANY = TermSearch(
    [literal for literal, _, _ in _BOILERPLATE if literal]
    + ["复制链接", "使用道具", "只看该作者", "电梯直达", "显示全部楼层", "倒序浏览", "阅读模式"]
    + ["查看", "展开全文", "收起全文", "网页链接", "该帖被"]
)

# Weibo reposts "//@张三:" and replies "回复@张三:" keep the text and lose the marker; a
# bare @mention goes. The look-behind (placed after the literal "@", so the engine can
# still search for "@" quickly) keeps e-mail addresses for `mask_personal`.
_MENTION_NAME = r"@(?<![A-Za-z0-9._%+\-]@)[\w\-·]{1,30}(?:\s*[:：])?"
_MENTION_MARKERS = re.compile(r"//\s*(?=@)|回复\s*(?=@)")
_MENTION = re.compile(_MENTION_NAME)
# #话题# keeps its words; a stray # before a word (Douyin style "#垃圾分类") goes too,
# but not the one in "3#楼" (building 3).
_HASHTAG = re.compile(r"#([^#\n]{1,60}?)#")
_STRAY_HASH = re.compile(r"#(?<![0-9]#)(?=[^\s\d#])")


def _collapse_whitespace(text: str) -> str:
    """Single spaces inside lines, single line breaks between non-empty lines.

    `str.split` runs in C and knows every Unicode space, which makes it several times
    faster than a regex substitution here.
    """
    if "\n" not in text and "\r" not in text:
        return " ".join(text.split())
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def clean(text: str) -> str:
    """The readable text of a post: no markup, links, mentions, emoji or boilerplate.

    Keeps words and Chinese punctuation, single line breaks between paragraphs and
    single spaces; full-width ASCII becomes half-width; traditional characters become
    simplified (only when there are any). Never raises on odd input: any `str` works,
    and `None` or an empty string gives "".
    """
    if not text:
        return ""
    if "<" in text:
        text = _drop_spans(text, _HTML_SPAN_OPEN, _HTML_SPAN_CLOSE)
        text = _HTML_BLOCK.sub("\n", text)
        text = _HTML_TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    if "[" in text:
        text = _drop_spans(text, _BBCODE_SPAN_OPEN, _BBCODE_SPAN_CLOSE)
        text = _BBCODE_TAG.sub("", text)
    text, traditional = _native.chars(text, _char_table())
    if traditional:
        text = to_simplified(text)
    if "://" in text:
        text = _URL_SCHEME.sub(" ", text)
    if "www." in text or "WWW." in text:
        text = _URL_WWW.sub(" ", text)
    if ".cn/" in text:
        text = _URL_SHORT.sub(" ", text)
    if _BOILERPLATE_ANY.leftmost_longest(text):
        for literal, pattern, repl in _BOILERPLATE:
            if literal in text:
                text = pattern.sub(repl, text)
    if "@" in text:
        if "//" in text or "回复" in text:
            text = _MENTION_MARKERS.sub("", text)
        text = _MENTION.sub(" ", text)
    if "#" in text:
        text = _HASHTAG.sub(r"\1", text)
        text = _STRAY_HASH.sub("", text)
    return _collapse_whitespace(text)


# ------------------------------------------------------------ traditional → simplified


@lru_cache(maxsize=1)
def _opencc():  # type: ignore[no-untyped-def]
    """OpenCC's standard traditional→simplified converter (phrase-aware, C++)."""
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _traditional_chars() -> str:
    """The characters that exist only in traditional script, as one string.

    Derived once from OpenCC itself (~15 ms): a CJK character is traditional-only when
    OpenCC changes it and it is never the simplified result of another character. So
    characters shared by both scripts (乾, 著, 干) never trigger a conversion, and the
    per-text test is one regex search (about 1 µs for 300 characters).
    """
    cc = _opencc()
    chars = [chr(cp) for cp in (*range(0x3400, 0x4DC0), *range(0x4E00, 0xA000))]
    converted = cc.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # pragma: no cover - OpenCC keeps line structure
        converted = [cc.convert(c) for c in chars]
    results = set(converted)
    return "".join(c for c, s in zip(chars, converted, strict=True) if c != s and c not in results)


@lru_cache(maxsize=1)
def _traditional_only() -> re.Pattern[str]:
    return re.compile("[" + _traditional_chars() + "]")


def has_traditional(text: str) -> bool:
    """True when `text` contains at least one traditional-only Chinese character."""
    return _traditional_only().search(text) is not None


def to_simplified(text: str) -> str:
    """`text` in simplified characters; unchanged (and free) when it has no traditional ones.

    OpenCC `t2s` rather than `zhconv`: measured on 270 characters of traditional text it
    takes ~11 µs against ~58 µs, and it converts by phrase (乾隆 stays 乾隆).
    """
    if not text or not has_traditional(text):
        return text
    return _opencc().convert(text)


# ------------------------------------------------------------------------ masking

# Digit patterns are written with [0-9] (a bitmap test, much faster than \d; mask_personal
# turns full-width digits into ASCII first). They must never start inside a run of
# digits: `(?<![0-9].)`, placed right after the first character, says "the character
# before the one just matched is not a digit". Putting it after the first character
# rather than before lets the engine skip to candidate characters quickly, and it
# makes each digit run a single starting point, so long runs cost linear time.
_NB = r"(?<![0-9].)"
_NOT_DIGIT_AFTER = r"(?![0-9])"
_MMDD = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_SEP = r"[ -]?"

# Every pattern below needs at least three digits in a row (plates: 京A·AB123), and all
# but the plates at least `_PHONE_DIGITS` (a local landline number) with at most a
# single space or hyphen between two digits; `_mask` tests both first.
_PHONE_DIGITS = 7
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+\-](?<![A-Za-z0-9._%+\-].)[A-Za-z0-9._%+\-]{0,63}@[A-Za-z0-9\-]{1,63}"
    r"(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z])"
)
# Resident IDs and bank cards in one scan: 18-digit IDs (optionally grouped 6-8-4),
# 16-19 digit cards (optionally grouped by 4), 15-digit legacy IDs. The callback
# validates; an 18-digit number with a wrong ID check digit may still be a card.
_LONG_NUMBER = re.compile(
    r"[1-9]"
    + _NB
    + r"(?:(?P<id18>[0-9]{5}[ -]?(?:18|19|20)[0-9]{2}"
    + _MMDD
    + r"[ -]?[0-9]{3}[0-9Xx](?![0-9A-Za-z]))"
    + r"|(?P<card>[0-9]{3}(?:[ -]?[0-9]{4}){3}(?:[ -]?[0-9]{1,3})?(?![0-9]))"
    + r"|(?P<id15>[0-9]{7}"
    + _MMDD
    + r"[0-9]{3}(?![0-9])))"
)
# A mobile number may follow a country code run together with it (+8613812345678).
_MOBILE = re.compile(r"1(?:" + _NB + r"|(?<=86.))[3-9][0-9](?:[ -]?[0-9]{4}){2}" + _NOT_DIGIT_AFTER)
# The country code left before a masked mobile number ("+86 [手机号]"); literal-first
# alternatives so the engine jumps between candidates, the callback checks the context.
_COUNTRY_CODE = re.compile(r"0086[ -]?(?=\[手机号\])|86[ -]?(?=\[手机号\])")
_EXTENSION = r"(?:[ ]?(?:-|转|分机|[Ee][Xx][Tt]\.?)[ ]?[0-9]{1,6})?"
_LANDLINE = re.compile(
    # area code followed by a separator, or run together with the number (3-digit codes
    # 010/02x take 8 digits, 4-digit codes 7 or 8)
    r"0" + _NB + r"(?:[0-9]{2,3}[ -]|(?:10|2[0-9])(?=[0-9]{8}(?![0-9]))"
    r"|[3-9][0-9]{2}(?=[0-9]{7,8}(?![0-9])))"
    r"[0-9]{3,4}[ -]?[0-9]{4}" + _EXTENSION + _NOT_DIGIT_AFTER
)
_LANDLINE_BRACKETED = re.compile(
    r"[(（]0[0-9]{2,3}[)）][ -]?[0-9]{3,4}[ -]?[0-9]{4}" + _EXTENSION + _NOT_DIGIT_AFTER
)
_LOCAL_PHONE_WORDS = ("电话", "座机", "固话", "联系方式", "Tel", "TEL", "tel", "Phone", "phone")
_LOCAL_PHONE = re.compile(
    "(" + "|".join(_LOCAL_PHONE_WORDS) + r")([:：]?\s*)[0-9]{3,4}[ -]?[0-9]{4}" + _NOT_DIGIT_AFTER
)
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_LETTER = "A-HJ-NP-Za-hj-np-z"
_PLATE = re.compile(
    rf"[{_PROVINCES}](?<![A-Za-z0-9].)[{_PLATE_LETTER}][·•・.\s\-]?"
    rf"(?:[{_PLATE_LETTER}0-9]{{5,6}}|[{_PLATE_LETTER}0-9]{{4}}[学警港澳挂领])"
    r"(?![A-Za-z0-9])"
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _digits(s: str) -> str:
    return s.replace(" ", "").replace("-", "")


def id_checksum_ok(number: str) -> bool:
    """GB 11643-1999 check digit of an 18-character resident ID number."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check of a card number given as a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_long_number(m: re.Match[str]) -> str:
    digits = _digits(m.group())
    if m.group("id18") and id_checksum_ok(digits):
        return PLACEHOLDERS["id_card"]
    if 16 <= len(digits) <= 19 and luhn_ok(digits):
        return PLACEHOLDERS["bank_card"]
    if m.group("id15"):
        return PLACEHOLDERS["id_card"]
    return m.group()


def _drop_country_code(m: re.Match[str]) -> str:
    start = m.start()
    part_of_number = start > 0 and m.string[start - 1].isdigit()
    return m.group() if part_of_number else ""


def _mask_plate(m: re.Match[str]) -> str:
    # A real serial has at least three digits (京A·12345, 京AD12345, 沪B·AB123);
    # "京ABCDE" or a province name before an English word is not a plate.
    serial = m.group()[2:]
    return PLACEHOLDERS["plate"] if sum(c.isdigit() for c in serial) >= 3 else m.group()


def mask_personal(text: str) -> str:
    """`text` with personal data replaced by typed placeholders (see the module doc).

    Accepts raw text too (crawlers call it before storing anything): full-width digits
    and letters are made half-width first, as `clean` would.
    """
    if not text:
        return ""
    return _mask(_half_width(text))


def _mask(text: str) -> str:
    """Masking proper, on text whose digits are ASCII.

    Order matters: e-mail first (its local part may hold a phone number), then the
    longest digit patterns (ID, bank card) before mobile and landline numbers, so a
    shorter pattern never masks part of a longer number.
    """
    if "@" in text:
        text = _EMAIL.sub(PLACEHOLDERS["email"], text)
    plain, spaced = _native.digit_runs(text)
    if plain < 3:  # every pattern below needs three digits in a row
        return text
    # Phone, ID and card numbers all have seven digits or more, single spaces or hyphens
    # between them at most; most posts have none (years, counts, prices), and skip
    # their four scans (~7 µs). Masking only removes digits, so the test holds after.
    if spaced >= _PHONE_DIGITS:
        text = _LONG_NUMBER.sub(_mask_long_number, text)
        text = _MOBILE.sub(PLACEHOLDERS["mobile"], text)
        if "86" in text and PLACEHOLDERS["mobile"] in text:
            text = _COUNTRY_CODE.sub(_drop_country_code, text).replace("+[手机号]", "[手机号]")
        text = _LANDLINE.sub(PLACEHOLDERS["landline"], text)
        if "(0" in text or "（0" in text:
            text = _LANDLINE_BRACKETED.sub(PLACEHOLDERS["landline"], text)
        text = _LOCAL_PHONE.sub(r"\1\2" + PLACEHOLDERS["landline"], text)
    return _PLATE.sub(_mask_plate, text)


# ----------------------------------------------------------------------- helpers

_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_NOT_LETTER = re.compile(r"[\W_]+")


def cjk_ratio(text: str) -> float:
    """Share of Chinese characters among the letters and digits of `text` (any script)."""
    letters = _NOT_LETTER.sub("", text)
    if not letters:
        return 0.0
    return (len(letters) - len(_CJK.sub("", letters))) / len(letters)


def is_mostly_chinese(text: str, threshold: float = 0.5) -> bool:
    """True when Chinese characters make up at least `threshold` of the letters.

    Counts characters, not words, so an English word weighs as much as its letters:
    "PM2.5超标" is 2 Chinese to 4 others, i.e. not mostly Chinese. Meant for deciding
    whether the Chinese models can say anything about a post, not for language ID:
    Japanese rich in kanji can pass.
    """
    return cjk_ratio(text) >= threshold


def clean_and_mask(text: str) -> str:
    """`clean` then mask: one text field ready to store (entry point `yuqing.text:prepare`).

    `pipeline.textprep` applies it to title, text and official reply before a post is
    published or stored; idempotent, so passing ingest, persist and the classifier does
    no harm.
    """
    return _mask(clean(text))


def prepare(title: str | None, text: str, *, cleaned: bool = False) -> str:
    """The text the models see and storage keeps: title and body, cleaned and masked.

    The title goes first on its own line, unless the body already starts with it (as
    message boards often repeat it). Either part may be empty. `cleaned`: both parts
    already went through `clean_and_mask` (a post from `pipeline.textprep`), so only
    the joined text is masked again; the result is the same, cleaning being idempotent,
    and the classifier stage saves the ~15 µs a post that cleaning costs.
    """
    body = text if cleaned else clean(text)
    head = (title if cleaned else clean(title)) if title else ""
    if head and not body.startswith(head):
        body = f"{head}\n{body}" if body else head
    return _mask(body)
