"""The cyclic garbage collector's settings for long-running servers (gateway, engine).

CPython collects its oldest generation whenever 10 collections of the middle one have
run and the objects that survived them exceed a quarter of the old generation. A
gateway holding thousands of queued requests (each a task, its coroutine frames and its
parsed body) grows its heap all through a flood, so it met that rule every second or
two, and each full collection walked every queued request: pauses of 120–180 ms (the
gateway in ``make bench-routing``'s overload run), which every request in flight sat
through. `settle_heap` moves what start-up built out of the collector's sight and
considers a full collection ten times less often; reference counting still frees
everything that is not in a cycle at once, and the young generations are collected as
before. Measured in docs/routing.md (*Overload*).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 700
"""Allocations (net of frees) between young collections: CPython's default."""
MIDDLE_THRESHOLD = 10
"""Young collections between middle ones: CPython's default."""
FULL_THRESHOLD = 100
"""Middle collections between full ones (CPython's default: 10)."""


def settle_heap() -> None:
    """Collect once, freeze what is left (it lives as long as the process) and space out
    the full collections (module doc). Call once, after start-up, before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, FULL_THRESHOLD)
