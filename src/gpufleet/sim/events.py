"""The discrete-event loop: a heap of timed events, each of which returns its follow-ups.

Contract (vidur's shape): an event is ``(time_s, handler, payload)``; the loop
pops the earliest (ties broken by scheduling order, so runs are deterministic),
sets ``now_s`` and calls ``handler(now_s, payload)``, which returns ``None`` or
an iterable of follow-up events. Time never goes backwards: scheduling an
event before ``now_s`` raises `SimulationError`. Heap entries are plain tuples
``(time_s, sequence, handler, payload)``; nothing else is allocated per event.

A heap entry cannot be withdrawn; an owner that re-schedules something earlier
leaves the old entry behind, and its handler returns `STALE` when it fires.
``last_s`` is the time of the latest event that was not stale (what the run
did, independent of the leftovers).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gpufleet.sim.errors import SimulationError

Handler = Callable[[float, Any], "Iterable[Event] | None"]
Event = tuple[float, Handler, Any]


class _Stale:
    """No follow-ups, and the event was a leftover (see module doc)."""

    __slots__ = ()

    def __iter__(self) -> Iterator[Event]:
        return iter(())


STALE: Iterable[Event] = _Stale()


class EventLoop:
    """Virtual time and the event heap."""

    __slots__ = ("_heap", "_sequence", "last_s", "now_s", "num_events")

    def __init__(self, start_s: float = 0.0) -> None:
        self._heap: list[tuple[float, int, Handler, Any]] = []
        self._sequence = 0
        self.now_s = start_s
        self.last_s = start_s
        self.num_events = 0

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, time_s: float, handler: Handler, payload: Any = None) -> None:
        """Add one event; SimulationError when it lies in the past."""
        if time_s < self.now_s:
            raise SimulationError(f"event at {time_s} s scheduled at {self.now_s} s")
        self._sequence += 1
        heapq.heappush(self._heap, (time_s, self._sequence, handler, payload))

    def next_time_s(self) -> float:
        """Time of the earliest pending event (inf when none)."""
        return self._heap[0][0] if self._heap else float("inf")

    def run(
        self,
        until_s: float = float("inf"),
        on_progress: Callable[[float], None] | None = None,
        progress_every: int = 65536,
    ) -> None:
        """Process events with time ≤ ``until_s`` (all of them by default)."""
        heap = self._heap
        pop, push = heapq.heappop, heapq.heappush
        count = self.num_events
        now = self.now_s
        try:
            while heap and heap[0][0] <= until_s:
                time_s, _, handler, payload = pop(heap)
                if time_s < now:
                    raise SimulationError(f"time went back from {now} to {time_s}")
                now = self.now_s = time_s
                count += 1
                follow = handler(time_s, payload)
                if follow is not STALE:
                    self.last_s = time_s
                if follow is not None:
                    for event in follow:
                        if event[0] < time_s:
                            raise SimulationError(f"follow-up at {event[0]} before {time_s}")
                        self._sequence += 1
                        push(heap, (event[0], self._sequence, event[1], event[2]))
                if on_progress is not None and not count % progress_every:
                    on_progress(time_s)
        finally:
            self.num_events = count
