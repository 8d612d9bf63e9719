"""`PeriodicStage` / `run_periodic`: timer-driven stages (the scheduler, the notifier's
delivery loop) keep ticking, wait out environment errors and stop when told."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy.exc import OperationalError

from pipeline import metrics
from pipeline.runner import StopFlag, run_periodic


def run_in_thread(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def test_ticks_until_stopped_and_reports_up() -> None:
    stop, ticks = StopFlag(), []

    def tick() -> None:
        ticks.append(time.monotonic())
        assert metrics.STAGE_UP.labels("periodic-a")._value.get() == 1
        if len(ticks) == 3:
            stop.set()

    run_periodic("periodic-a", tick, 0.01, stop)
    assert len(ticks) == 3
    assert metrics.STAGE_UP.labels("periodic-a")._value.get() == 0


def test_environment_errors_are_waited_out() -> None:
    stop, calls = StopFlag(), []
    before = metrics.STAGE_TRANSIENT_ERRORS.labels("periodic-b")._value.get()

    def tick() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise OperationalError("SELECT 1", {}, Exception("database is locked"))
        stop.set()

    run_periodic("periodic-b", tick, 0.01, stop)
    assert len(calls) == 3
    assert metrics.STAGE_TRANSIENT_ERRORS.labels("periodic-b")._value.get() == before + 2


def test_other_errors_end_the_loop() -> None:
    def tick() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        run_periodic("periodic-c", tick, 0.01, StopFlag())
    assert metrics.STAGE_UP.labels("periodic-c")._value.get() == 0


def test_wake_runs_the_next_tick_early() -> None:
    stop, wake, ticked = StopFlag(), threading.Event(), threading.Semaphore(0)
    thread = run_in_thread(run_periodic, "periodic-d", ticked.release, 60.0, stop, wake)
    try:
        assert ticked.acquire(timeout=10)  # the first tick runs at once
        wake.set()
        assert ticked.acquire(timeout=10)  # the second long before the 60 s interval
    finally:
        stop.set()
        wake.set()
        thread.join(10)
    assert not thread.is_alive()
