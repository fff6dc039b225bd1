"""Preemption notices: where they come from and where replacement capacity goes. Pure.

Sources (a node taint's key → how long the node has left), as set by:

- aws-node-termination-handler (``taintNode``): ``aws-node-termination-handler/spot-itn``
  (spot interruption notice: 2 minutes), ``…/scheduled-maintenance``,
  ``…/asg-lifecycle-termination``, ``…/rebalance-recommendation`` (a warning that comes
  before any notice: handled as one with the full 2 minutes);
- Karpenter: ``karpenter.sh/disrupted`` (v1; also on its spot-interruption path) and
  ``karpenter.sh/disruption=disrupting`` (v1beta1);
- GKE: ``cloud.google.com/impending-node-termination`` (30 s for Spot VMs);
- a manual admin call (``POST /admin/preempt``, ``gpufleet preempt``), with its own notice.

Replacement: in the replica's own pool, unless that pool is spot and *unhealthy* — at
least ``unhealthy_after`` notices within ``window_s`` — then in the cheapest on-demand
pool that serves the model (the replica's own pool if there is none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from gpufleet.config import FleetConfig

NOTICE_TAINTS: Mapping[str, float] = MappingProxyType(
    {
        "aws-node-termination-handler/spot-itn": 120.0,
        "aws-node-termination-handler/scheduled-maintenance": 120.0,
        "aws-node-termination-handler/asg-lifecycle-termination": 120.0,
        "aws-node-termination-handler/rebalance-recommendation": 120.0,
        "karpenter.sh/disrupted": 120.0,
        "karpenter.sh/disruption": 120.0,
        "cloud.google.com/impending-node-termination": 30.0,
    }
)
ADMIN_SOURCE = "admin"


@dataclass(frozen=True, slots=True)
class Notice:
    replica_id: str
    notice_s: float
    """Seconds the replica has left (policy time: engine seconds when time-scaled)."""
    source: str
    """The taint key, or ``admin``."""


def notice_from_taints(taints: Iterable[tuple[str, str | None]]) -> tuple[str, float] | None:
    """(source, notice_s) of the first known notice taint among (key, effect) pairs."""
    for key, _effect in taints:
        notice_s = NOTICE_TAINTS.get(key)
        if notice_s is not None:
            return key, notice_s
    return None


@dataclass(frozen=True)
class SpotHealth:
    """When a spot pool counts as unhealthy (module doc)."""

    unhealthy_after: int = 2
    window_s: float = 600.0

    def unhealthy(self, notice_times_s: Sequence[float], now_s: float) -> bool:
        recent = [t for t in notice_times_s if now_s - t <= self.window_s]
        return len(recent) >= self.unhealthy_after


def replacement_key(config: FleetConfig, key: str, spot_pool_unhealthy: bool) -> str:
    """Where the replacement of a replica of ``key`` (``pool/model``) goes (module doc)."""
    pool_name, _, model = key.partition("/")
    pools = {p.name: p for p in config.pools}
    pool = pools.get(pool_name)
    if pool is None or pool.capacity != "spot" or not spot_pool_unhealthy:
        return key
    candidates = [
        p
        for p in config.pools
        if p.capacity == "on-demand" and any(d.model == model for d in p.deployments)
    ]
    if not candidates:
        return key
    cheapest = min(
        candidates, key=lambda p: (p.price_usd_per_gpu_hour * p.gpus_per_replica, p.name)
    )
    return f"{cheapest.name}/{model}"
