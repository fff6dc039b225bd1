"""LoRA adapters of one replica: which are in use by running requests, which are resident.

Contract (vLLM V1 semantics, simplified):

- At most ``max_loras`` distinct adapters may be active in a batch. A waiting
  request whose adapter is not already active cannot be admitted while
  ``max_loras`` adapters are; the scheduler skips it and keeps it at the front
  of the queue (`can_join`). "Active" is approximated by "used by a running
  request" (vLLM counts the running requests scheduled in this step; the two
  differ only when the token budget leaves running requests unscheduled).
- GPU-resident adapters form an LRU of ``max_loras`` slots. A step whose batch
  uses an adapter that is not resident loads it, evicting the least recently
  used adapter that the batch does not use, and pays one load time per load
  (`load_for_batch`). The CPU-side adapter cache is not modelled.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, KeysView


class LoraSlots:
    """Reference counts of adapters in running requests plus the resident LRU."""

    __slots__ = ("_resident", "_running", "max_loras")

    def __init__(self, max_loras: int) -> None:
        self.max_loras = max_loras
        self._running: dict[str, int] = {}
        self._resident: OrderedDict[str, None] = OrderedDict()

    def running_adapters(self) -> KeysView[str]:
        """Adapters used by at least one running request."""
        return self._running.keys()

    def can_join(self, adapter: str, active: Collection[str]) -> bool:
        """Whether a request using ``adapter`` may join a batch already using ``active``."""
        return adapter in active or len(active) < self.max_loras

    def add_running(self, adapter: str) -> None:
        """A request using ``adapter`` started running."""
        self._running[adapter] = self._running.get(adapter, 0) + 1

    def remove_running(self, adapter: str) -> None:
        """A request using ``adapter`` stopped running (finished, preempted, aborted)."""
        count = self._running[adapter] - 1
        if count:
            self._running[adapter] = count
        else:
            del self._running[adapter]

    def load_for_batch(self, adapters: Collection[str]) -> tuple[str, ...]:
        """Make every adapter of the batch resident; return the ones that had to be loaded."""
        resident = self._resident
        loaded: list[str] = []
        for adapter in adapters:
            if adapter in resident:
                resident.move_to_end(adapter)
            else:
                loaded.append(adapter)
                resident[adapter] = None
        while len(resident) > self.max_loras:
            oldest = next(iter(resident))
            if oldest in adapters:
                break
            del resident[oldest]
        return tuple(loaded)
