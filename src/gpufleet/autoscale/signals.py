"""What an autoscaling policy sees: one immutable snapshot of the fleet at time ``now_s``.

Contract: the caller (the simulator's `gpufleet.sim.scaling`, or the live
controller from the gateway's state) builds a `FleetSignals` every
``policy.interval_s`` seconds and passes it to ``policy.desired_replicas``.
Deployments are keyed ``"pool/model"``. Counts of replicas are by state:
*ready* (routable), *starting* (cold start), *draining* (no new requests:
scale-down or a spot notice; ``num_notice`` of them are under a preemption
notice and will vanish). Counters named ``num_*_total`` are cumulative since
the start (like Prometheus counters), so a policy derives rates from two
snapshots and a missed evaluation loses nothing. Fields with defaults are
optional: a source that cannot provide them leaves them empty or zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DeploymentSignals:
    """One deployment (model × pool) at time t: replicas by state and the load on them."""

    model: str
    pool: str
    num_ready: int
    num_starting: int
    num_draining: int
    num_in_flight: int
    num_waiting: float
    num_running: float
    mean_kv_usage: float
    num_notice: int = 0
    """Draining replicas that are under a spot-preemption notice (subset of draining)."""
    num_notices_total: int = 0
    """Preemption notices received by this deployment's replicas since the start."""
    max_starting_age_s: float = 0.0
    """Longest a replica of this deployment has been starting (stuck: capacity short)."""

    @property
    def num_active(self) -> int:
        """Replicas that serve or will serve: ready + starting (draining ones are lost)."""
        return self.num_ready + self.num_starting


@dataclass(frozen=True, slots=True)
class FleetSignals:
    """Everything a policy may know at time ``now_s``."""

    now_s: float
    deployments: Mapping[str, DeploymentSignals]
    queued_by_model: Mapping[str, int]
    """Requests held in the gateway's admission queue per model (none routable)."""
    arrivals_per_s_by_model: Mapping[str, float]
    """Recent arrival rate per model (the simulator adds ``"*"`` for the whole fleet)."""
    num_arrivals_total_by_model: Mapping[str, int] = field(default_factory=dict)
    """Requests received per model since the start (a counter); preferred over the rate."""
    max_queue_wait_s_by_model: Mapping[str, float] = field(default_factory=dict)
    """Age of the oldest request in the gateway queue per model."""


class AutoscalePolicy(Protocol):
    """Desired replicas per deployment key, from a snapshot.

    ``desired_replicas`` returns a count for the keys it manages; keys left out
    keep their count. A policy may keep state between calls (smoothing,
    windows) but reads no clock: time is ``signals.now_s``.
    """

    @property
    def interval_s(self) -> float:
        """Seconds between two evaluations (inf: never)."""
        ...

    def desired_replicas(self, signals: FleetSignals) -> Mapping[str, int]: ...
