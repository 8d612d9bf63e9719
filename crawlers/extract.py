"""Reading fields out of pages and JSON as `sources.yaml` describes them.

A selector is CSS unless it starts with `xpath:`. One that ends in `::text`, `::attr(x)`
or an XPath `text()`/`@x` yields strings; one that picks elements yields their visible
text, paragraphs kept as line breaks (scripts and styles dropped).
"""

from __future__ import annotations

import re
from typing import Any

from lxml import html as lxml_html
from parsel import Selector, SelectorList

_BLOCK_TAGS = {
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
    "section", "article", "table", "ul", "ol", "dd", "dt", "pre", "hr",
}  # fmt: skip
_DROP_TAGS = {"script", "style", "noscript", "template"}
_SPACES = re.compile(r"[ \t\r\f\v\u3000\xa0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def select(node: Selector | SelectorList[Selector], selector: str) -> SelectorList[Selector]:
    """Apply a `sources.yaml` selector (CSS, or XPath after `xpath:`)."""
    if selector.startswith("xpath:"):
        return node.xpath(selector[len("xpath:") :])
    return node.css(selector)


def _element_text(element: Any) -> str:
    parts: list[str] = []

    def walk(el: Any) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag.lower() in _DROP_TAGS:
            if el.tail:
                parts.append(el.tail)
            return
        block = tag.lower() in _BLOCK_TAGS
        if block:
            parts.append("\n")
        if el.text and tag:
            parts.append(el.text)
        for child in el:
            walk(child)
        if block:
            parts.append("\n")
        if el.tail:
            parts.append(el.tail)

    tail, element.tail = element.tail, None  # the text after the element is not its own
    try:
        walk(element)
    finally:
        element.tail = tail
    return "".join(parts)


def tidy(text: str) -> str:
    """Whitespace runs collapsed, blank lines merged, ends stripped."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip()


def texts(node: Selector | SelectorList[Selector], selector: str | None) -> list[str]:
    """Each match as text: strings as they are, elements as their visible text."""
    if not selector:
        return []
    out = []
    for match in select(node, selector):
        root = match.root
        value = root if isinstance(root, str) else _element_text(root)
        value = tidy(value)
        if value:
            out.append(value)
    return out


def first_text(node: Selector | SelectorList[Selector], selector: str | None) -> str | None:
    found = texts(node, selector)
    return found[0] if found else None


def joined_text(node: Selector | SelectorList[Selector], selector: str | None) -> str | None:
    """Every match's text, one paragraph each (a body split over several elements)."""
    found = texts(node, selector)
    return "\n".join(found) if found else None


def html_to_text(markup: str) -> str:
    """Text of an HTML fragment (feed descriptions, Weibo text); plain text passes."""
    if "<" not in markup:
        return tidy(markup)
    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (ValueError, lxml_html.etree.ParserError):
        return tidy(markup)
    return tidy(_element_text(root))


_INT = re.compile(r"\d[\d,]*")


def to_int(value: Any) -> int | None:
    """A count from `1,234`, `查看: 56`, `1.2万` or a JSON number; None when absent."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value >= 0 else None
    text = str(value)
    wan = re.search(r"(\d+(?:\.\d+)?)\s*万", text)
    if wan:
        return int(float(wan.group(1)) * 10_000)
    m = _INT.search(text)
    return int(m.group(0).replace(",", "")) if m else None


# --- JSON paths -----------------------------------------------------------------------

_STEP = re.compile(r"([^.\[\]]+)|\[(\*|-?\d+)\]")


def json_path(data: Any, path: str) -> list[Any]:
    """Values at `path` (`data.cards[*].mblog`, `user.name`, `pics[0]`); [] when absent.

    `[*]` fans out over a list; a step that does not fit the data yields nothing."""
    current = [data]
    for name, index in _STEP.findall(path):
        nxt: list[Any] = []
        for value in current:
            if name:
                if isinstance(value, dict) and name in value:
                    nxt.append(value[name])
            elif index == "*":
                if isinstance(value, list):
                    nxt.extend(value)
            elif isinstance(value, list):
                i = int(index)
                if -len(value) <= i < len(value):
                    nxt.append(value[i])
        current = nxt
    return [v for v in current if v is not None]


def json_value(data: Any, path: str | None) -> Any:
    if not path:
        return None
    found = json_path(data, path)
    return found[0] if found else None


_TEMPLATE = re.compile(r"\{([^{}]+)\}")


def json_template(data: Any, template: str) -> str | None:
    """`https://m.weibo.cn/detail/{id}` filled from the item; a plain path without
    braces is read as a path. None when a placeholder has no value."""
    if "{" not in template:
        value = json_value(data, template)
        return None if value is None else str(value)
    missing = False

    def fill(m: re.Match[str]) -> str:
        nonlocal missing
        value = json_value(data, m.group(1))
        if value is None:
            missing = True
            return ""
        return str(value)

    out = _TEMPLATE.sub(fill, template)
    return None if missing else out
