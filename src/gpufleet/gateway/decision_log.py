"""The last N routing decisions of one gateway, for the fleet page.

Recording is on the request path, so it only appends a small tuple to a bounded
ring (``collections.deque(maxlen=N)``: O(1), no formatting); the decisions are
turned into JSON-ready dicts only when someone reads them. The request itself is
not kept (its prompt text could be megabytes): only its model, adapter and priority.
One instance per gateway (owned by its ``Proxy``); nothing is module-level.
"""

from __future__ import annotations

import time
from collections import deque

from gpufleet.types import RouteRequest, RoutingDecision

DEFAULT_CAPACITY = 50
MAX_SCORES = 8


Entry = tuple[float, str, str | None, int, RoutingDecision]
"""(wall time, model, adapter, priority, decision)"""


class DecisionLog:
    """A bounded ring of the last decisions; the oldest falls out."""

    __slots__ = ("_ring",)

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity < 1:
            raise ValueError("a decision log holds at least one decision")
        self._ring: deque[Entry] = deque(maxlen=capacity)

    def record(self, request: RouteRequest, decision: RoutingDecision | None) -> None:
        """Remember ``decision`` (``None``, no candidate survived, is not recorded)."""
        if decision is not None:
            self._ring.append(
                (time.time(), request.model, request.adapter, request.priority, decision)
            )

    def __len__(self) -> int:
        return len(self._ring)

    def recent(self, limit: int | None = None) -> list[dict[str, object]]:
        """The newest first, at most ``limit``: time, model, adapter, priority, the chosen
        replica, how many candidates there were, and the scores of the ``MAX_SCORES``
        best-ranked candidates (the chosen one first)."""
        entries = list(self._ring)
        entries.reverse()
        if limit is not None:
            entries = entries[:limit]
        return [_describe(entry) for entry in entries]


def _describe(entry: Entry) -> dict[str, object]:
    ts, model, adapter, priority, decision = entry
    ranked = (decision.endpoint, *decision.fallbacks[: MAX_SCORES - 1])
    return {
        "ts": round(ts, 3),
        "model": model,
        "adapter": adapter,
        "priority": priority,
        "chosen": decision.endpoint.id,
        "num_candidates": decision.num_candidates,
        "scores": [
            {"endpoint": e.id, "score": round(decision.scores.get(e.id, 0.0), 4)} for e in ranked
        ],
    }
