"""Every benchmark script starts as the README runs it (`python benchmarks/X.py`).

Python puts the script's own folder first on `sys.path`, where `benchmarks/pipeline.py`
shadows the `pipeline` package; a script that forgets to put the repository first fails
at its first import. `--help` imports everything a script needs and runs nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


def test_every_script_is_checked() -> None:
    assert {"classify.py", "pipeline.py", "sentiment.py", "bus.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_starts(script: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        cwd=tmp_path,  # not the repository: the script must find its packages itself
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
