"""The autoscaling hook: a policy maps fleet signals at time t to desired replicas.

Contract: the simulator calls ``policy.desired_replicas(signals)`` every
``policy.interval_s`` seconds of virtual time with a `FleetSignals` snapshot
and provisions (cold start) or drains replicas to reach the returned counts
per deployment key (``"pool/model"``); keys left out keep their count. A
policy is pure: it sees only the snapshot (and its own state). `StaticPolicy`
(the default) never changes anything and is never called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DeploymentSignals:
    """One deployment at time t: replicas by state and the load on them."""

    model: str
    pool: str
    num_ready: int
    num_starting: int
    num_draining: int
    num_in_flight: int
    num_waiting: float
    num_running: float
    mean_kv_usage: float


@dataclass(frozen=True, slots=True)
class FleetSignals:
    """Everything a policy may know at time ``now_s``."""

    now_s: float
    deployments: Mapping[str, DeploymentSignals]
    queued_by_model: Mapping[str, int]
    arrivals_per_s_by_model: Mapping[str, float]


class AutoscalePolicy(Protocol):
    """Desired replicas per deployment key, from a snapshot."""

    @property
    def interval_s(self) -> float:
        """Seconds of virtual time between two evaluations (inf: never)."""
        ...

    def desired_replicas(self, signals: FleetSignals) -> Mapping[str, int]: ...


class StaticPolicy:
    """The fleet as configured; the simulator never evaluates it."""

    @property
    def interval_s(self) -> float:
        return float("inf")

    def desired_replicas(self, signals: FleetSignals) -> Mapping[str, int]:
        return {}
