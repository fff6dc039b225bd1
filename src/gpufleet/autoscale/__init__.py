"""Autoscaling: desired replicas per model and pool, from fleet signals. Pure.

The same objects run in the simulator (``Simulator(..., autoscale=policy)``,
virtual time) and in the live controller (wall time, handed in): no I/O, no
clock, no asyncio. Public API:

- `FleetSignals` / `DeploymentSignals` — the snapshot a policy reads (queue,
  in-flight, waiting/running, KV usage, arrivals counter, spot notices), keyed
  ``"pool/model"``; `AutoscalePolicy` — the protocol: ``interval_s`` and
  ``desired_replicas(signals) -> {key: replicas}`` (keys left out keep their count).
- `SloAutoscaler(fleet.autoscale, fleet, catalog=None)` — gpufleet's policy
  (algorithm in `gpufleet.autoscale.policy`, knobs in fleet.yaml's
  ``autoscale:`` section and each deployment's ``min_replicas``/``max_replicas``).
  ``decide(signals) -> ScalingDecision`` gives every deployment's
  `DeploymentDecision` (current, desired, reason; ``describe()`` is the log
  line ``scale pool/model 2→4: ...``); ``desired_replicas`` is
  ``decide(signals).replicas``; ``last_decision`` keeps the latest. Pass a
  ``Catalog`` to size replicas with the planner's capacity estimate.
- `ThresholdPolicy` — the common KEDA setup (waiting requests > 5 per replica),
  for comparison.
- `ReplicaCapacity` / `replica_capacities` — requests/s per replica at the SLO.
"""

from gpufleet.autoscale.capacity import ReplicaCapacity, replica_capacities
from gpufleet.autoscale.decision import DeploymentDecision, ScalingDecision
from gpufleet.autoscale.policy import SloAutoscaler
from gpufleet.autoscale.signals import AutoscalePolicy, DeploymentSignals, FleetSignals
from gpufleet.autoscale.threshold import ThresholdPolicy

__all__ = [
    "AutoscalePolicy",
    "DeploymentDecision",
    "DeploymentSignals",
    "FleetSignals",
    "ReplicaCapacity",
    "ScalingDecision",
    "SloAutoscaler",
    "ThresholdPolicy",
    "replica_capacities",
]
