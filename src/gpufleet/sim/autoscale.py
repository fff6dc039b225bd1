"""The autoscaling hook: a policy maps fleet signals at time t to desired replicas.

Contract: the simulator calls ``policy.desired_replicas(signals)`` every
``policy.interval_s`` seconds of virtual time with a `FleetSignals` snapshot
and provisions (cold start) or drains replicas to reach the returned counts
per deployment key (``"pool/model"``); keys left out keep their count. A
policy is pure: it sees only the snapshot (and its own state). `StaticPolicy`
(the default) never changes anything and is never called. The signal types
and the protocol live in `gpufleet.autoscale.signals` (shared with the live
controller) and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping

from gpufleet.autoscale.signals import AutoscalePolicy, DeploymentSignals, FleetSignals

__all__ = ["AutoscalePolicy", "DeploymentSignals", "FleetSignals", "StaticPolicy"]


class StaticPolicy:
    """The fleet as configured; the simulator never evaluates it."""

    @property
    def interval_s(self) -> float:
        return float("inf")

    def desired_replicas(self, signals: FleetSignals) -> Mapping[str, int]:
        return {}
