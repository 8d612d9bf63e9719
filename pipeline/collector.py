"""Python's cycle collector in a long-running stage process.

A stage loads a lot once (models, config, SQLAlchemy metadata, modules) and then works
in batches that make many short-lived containers and few reference cycles. Left to its
default thresholds, the collector runs every 700 allocations and keeps walking the
batch's live objects (in its full passes, everything made since start-up too):
measured in the responder, ~0.3 s of a 10,000-post run, ~10 % of its CPU. So:

- `freeze_loaded` moves what the stage loaded at start out of the generations for good;
- `paused` stops automatic collection for one batch; the batch's objects have died by
  reference counting when it ends, and the first collection after it finds the few
  cycles left. A batch is bounded (`stage_batch_size`), so is what it can hold.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_loaded() -> None:
    """Collect once, then exempt every object alive now from later collections."""
    gc.collect()
    gc.freeze()


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collection inside; nested use keeps it off until the outermost
    exit, and a collector that was off stays off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
