"""Cost ordering: turn a model's demand (requests/s) into replicas per pool, cheapest first.

Contract: `allocate` fills ``demand_per_s`` from the model's deployments in
`cost_order`: healthy spot pools first, then on-demand, each by price per
unit of capacity. An unhealthy spot pool keeps the replicas it has ready
(they serve until their notice; make before break) and gets no new ones.
Each deployment gets at least its ``min_replicas``, at most its
``max_replicas``, and as many replicas of ``usable_per_s`` (capacity ×
target utilisation) as the demand still uncovered needs; spot pools together
cover at most ``max_spot_fraction`` of the demand. Deployments that cannot
meet the SLO (capacity 0) get their minimum only. With ``floor`` ≥ 1 and
nothing allocated, the first usable deployment gets one replica (not a spot
one when ``max_spot_fraction`` is 0). `trim_to_budget` then removes replicas, most
expensive capacity first, until the fleet's price fits the cap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Slot:
    """One deployment as the allocator sees it."""

    key: str
    model: str
    pool: str
    spot: bool
    usd_per_hour: float
    """Price of one replica (GPUs × price per GPU-hour)."""
    usable_per_s: float
    """Requests/s one replica is planned to serve (capacity × target utilisation)."""
    min_replicas: int
    max_replicas: int | None

    @property
    def usd_per_request_rate(self) -> float:
        return self.usd_per_hour / self.usable_per_s if self.usable_per_s > 0 else math.inf


def cost_order(slots: Sequence[Slot], unhealthy: Mapping[str, str]) -> list[Slot]:
    """Healthy spot, on-demand, unhealthy spot; cheapest capacity first within each."""

    def rank(slot: Slot) -> tuple[int, float, str]:
        group = (2 if slot.pool in unhealthy else 0) if slot.spot else 1
        return group, slot.usd_per_request_rate, slot.key

    return sorted(slots, key=rank)


def allocate(
    slots: Sequence[Slot],
    demand_per_s: float,
    *,
    unhealthy: Mapping[str, str],
    ready: Mapping[str, int],
    max_spot_fraction: float,
    floor: int,
) -> dict[str, int]:
    """Replicas per deployment key (module doc)."""
    out = {
        s.key: max(s.min_replicas, ready.get(s.key, 0)) if s.pool in unhealthy else s.min_replicas
        for s in slots
    }
    ordered = cost_order(slots, unhealthy)
    remaining = demand_per_s - sum(out[s.key] * s.usable_per_s for s in slots)
    spot_left = max_spot_fraction * demand_per_s - sum(
        out[s.key] * s.usable_per_s for s in slots if s.spot
    )
    for slot in ordered:
        if remaining <= 1e-9 or slot.usable_per_s <= 0 or slot.pool in unhealthy:
            continue
        want = math.ceil(remaining / slot.usable_per_s - 1e-9)
        if slot.spot:
            if spot_left <= 1e-9:
                continue
            if spot_left < remaining:
                want = math.floor(spot_left / slot.usable_per_s + 1e-9)
        ceiling = slot.max_replicas if slot.max_replicas is not None else math.inf
        extra = max(0, int(min(slot.min_replicas + want, ceiling)) - slot.min_replicas)
        out[slot.key] += extra
        remaining -= extra * slot.usable_per_s
        if slot.spot:
            spot_left -= extra * slot.usable_per_s
    if floor and not any(out.values()):
        for slot in ordered:
            room = slot.max_replicas is None or slot.max_replicas >= 1
            allowed = not slot.spot or (max_spot_fraction > 0 and slot.pool not in unhealthy)
            if slot.usable_per_s > 0 and room and allowed:
                out[slot.key] = 1
                break
    return out


def trim_to_budget(
    slots: Sequence[Slot], desired: dict[str, int], budget_usd_per_hour: float
) -> dict[str, int]:
    """Replicas removed per key so that Σ desired × price ≤ budget (module doc).

    Most expensive capacity goes first, never below a deployment's minimum; a
    model's last replica goes only when every other replica is gone."""
    removed: dict[str, int] = {}
    cost = sum(desired[s.key] * s.usd_per_hour for s in slots)
    by_cost = sorted(slots, key=lambda s: (-s.usd_per_request_rate, -s.usd_per_hour, s.key))
    for keep_last in (True, False):
        progress = True
        while cost > budget_usd_per_hour + 1e-9 and progress:
            progress = False
            for slot in by_cost:
                if desired[slot.key] <= slot.min_replicas or slot.usd_per_hour <= 0:
                    continue
                model_total = sum(desired[s.key] for s in slots if s.model == slot.model)
                if keep_last and model_total <= 1:
                    continue
                desired[slot.key] -= 1
                removed[slot.key] = removed.get(slot.key, 0) + 1
                cost -= slot.usd_per_hour
                progress = True
                break
    return removed
