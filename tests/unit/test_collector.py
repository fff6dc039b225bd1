"""settle_heap: start-up objects frozen, full collections spaced out, cycles still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from gpufleet.collector import FULL_THRESHOLD, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


def test_settle_heap_freezes_start_up_objects_and_spaces_full_collections(
    restored_collector: None,
) -> None:
    built_at_start_up = [_Node()]
    assert _watched(built_at_start_up)
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert not _watched(built_at_start_up)  # in the permanent generation
    assert gc.get_threshold()[2] == FULL_THRESHOLD > 10
    assert gc.get_threshold()[:2] == (700, 10)  # the young generations as CPython's


def _watched(obj: object) -> bool:
    return any(o is obj for generation in range(3) for o in gc.get_objects(generation))


def test_a_cycle_made_after_settling_is_still_collected(restored_collector: None) -> None:
    settle_heap()
    a, b = _Node(), _Node()
    a.peer, b.peer = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None
