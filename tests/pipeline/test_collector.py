"""The cycle collector around a stage's batches."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pipeline import collector


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


def test_paused_turns_collection_off_inside_and_back_on_after() -> None:
    gc.enable()
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner exit does not turn it back on
    assert gc.isenabled()


def test_paused_turns_it_back_on_after_an_error() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("batch failed")
    assert gc.isenabled()


def test_paused_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()


def test_cycles_made_while_paused_are_collected_afterwards() -> None:
    class Node:
        pass

    gc.enable()
    with collector.paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        count = sum(isinstance(o, Node) for o in gc.get_objects())
        del a, b
    assert count == 2
    gc.collect()
    assert not any(isinstance(o, Node) for o in gc.get_objects())


def test_freeze_loaded_exempts_what_is_alive_now() -> None:
    gc.unfreeze()
    loaded = [object() for _ in range(10)]
    collector.freeze_loaded()
    assert gc.get_freeze_count() > 0
    assert not any(o is loaded for o in gc.get_objects())
