"""JSONL input: every bad line reported with its number, good lines kept."""

from __future__ import annotations

import io

from pipeline.jsonl import read_jsonl


def test_bad_lines_are_reported_and_good_ones_kept() -> None:
    data = (
        ("\ufeff" + '{"a": 1}\n\n{broken\n[1]\n').encode()
        + b'{"b": "\xff\xfe"}\n'
        + '{"c": "中文"}'.encode()
    )
    lines = list(read_jsonl(io.BytesIO(data)))
    assert [(line.number, line.data) for line in lines if line.data] == [
        (1, {"a": 1}),
        (6, {"c": "中文"}),
    ]
    errors = {line.number: line.error for line in lines if line.error}
    assert set(errors) == {3, 4, 5}
    assert "not JSON" in errors[3]
    assert "JSON object" in errors[4]
    assert "UTF-8" in errors[5]


def test_over_long_line_is_skipped_without_losing_the_next() -> None:
    data = b'{"x": "' + b"a" * 5000 + b'"}\n{"ok": true}\n'
    lines = list(read_jsonl(io.BytesIO(data), max_line_bytes=1000))
    assert lines[0].error and "longer than" in lines[0].error
    assert lines[1].data == {"ok": True} and lines[1].number == 2
