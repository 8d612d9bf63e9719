"""The pipeline benchmark's sustained rate, from its readings of posts filed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pipeline.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pipeline", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sustained_rate_spans_ten_to_ninety_percent_filed(bench: ModuleType) -> None:
    # 50 warm-up posts filed before; 1,000 posts in steps of 200, the first after a
    # slow fill (2 s) and the last after a slow drain.
    readings = [(0.0, 50), (2.0, 250), (2.5, 450), (3.0, 650), (3.5, 850), (6.0, 1050)]
    # 10 % (100) is first reached at 2.0 s with 200 filed, 90 % (900) at 6.0 s...
    assert bench.sustained_rate(readings, 50, 1000) == pytest.approx(800 / 4.0)
    steady = [(0.0, 50), (2.0, 250), (2.5, 450), (3.0, 650), (3.5, 850), (3.75, 950), (6.0, 1050)]
    # ... or at 3.75 s with 900, when a reading saw it: the drain is left out.
    assert bench.sustained_rate(steady, 50, 1000) == pytest.approx(700 / 1.75)


def test_sustained_rate_is_none_when_one_reading_saw_it_all(bench: ModuleType) -> None:
    assert bench.sustained_rate([(0.0, 0), (1.0, 1000)], 0, 1000) is None
