"""`yuqing run`: each stage in its own process, restarted when it crashes.

Processes, not threads: a stage that hangs or leaks cannot take the others down, the
classifier gets a core of its own, and SIGKILL of one worker is exactly the failure the
pipeline's at-least-once design recovers from. Stage i serves metrics on
`metrics_port + i`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from pipeline.runner import StopFlag

log = logging.getLogger(__name__)

RESTART_BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a child that ran this long resets its backoff
STOP_GRACE = 30.0


@dataclass
class Child:
    stage: str
    metrics_port: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 1.0
    next_start: float = field(default=0.0)

    def start(self) -> None:
        env = dict(os.environ, YUQING_METRICS_PORT=str(self.metrics_port))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "stage", self.stage], env=env
        )
        self.started = time.monotonic()
        log.info("started %s (pid %d, metrics :%d)", self.stage, self.proc.pid, self.metrics_port)


def supervise(stages: list[str], metrics_port: int, stop: StopFlag | None = None) -> int:
    """Run `stages` until SIGTERM/SIGINT; returns 0 after a clean stop."""
    stop = stop if stop is not None else StopFlag()
    stop.install()
    children = [
        Child(name, metrics_port + i if metrics_port else 0) for i, name in enumerate(stages)
    ]
    for child in children:
        child.start()
    while not stop.wait(0.5):
        now = time.monotonic()
        for child in children:
            code = child.proc.poll() if child.proc else None
            if child.proc is not None and code is not None:
                ran = now - child.started
                child.backoff = (
                    1.0 if ran > STABLE_AFTER else min(child.backoff * 2, RESTART_BACKOFF_MAX)
                )
                child.next_start = now + child.backoff
                child.proc = None
                log.error(
                    "%s exited with %s after %.0fs; restarting in %.0fs",
                    child.stage,
                    code,
                    ran,
                    child.backoff,
                )
            if child.proc is None and now >= child.next_start:
                child.restarts += 1
                child.start()
    return _stop_all(children)


def _stop_all(children: list[Child]) -> int:
    """SIGTERM every child (each finishes its batch and commits), SIGKILL stragglers."""
    running = [c for c in children if c.proc and c.proc.poll() is None]
    for child in running:
        child.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    deadline = time.monotonic() + STOP_GRACE
    for child in running:
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            log.error("%s did not stop within %.0fs; killing it", child.stage, STOP_GRACE)
            child.proc.kill()  # type: ignore[union-attr]
            child.proc.wait()  # type: ignore[union-attr]
    log.info("all stages stopped")
    return 0
