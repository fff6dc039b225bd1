"""Applying an autoscaling decision: provision with a cold start, or drain the newest.

Contract: for each deployment key the policy names, replicas that are starting
or ready (not draining) are counted; below the target, new replicas are
provisioned (cold start); above it, the newest are drained — a starting
replica stops at once, a ready one takes no new requests and stops when its
last request completes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpufleet.sim.autoscale import DeploymentSignals, FleetSignals
from gpufleet.sim.replica import READY, STARTING, STOPPED

if TYPE_CHECKING:
    from gpufleet.sim.simulator import Simulator


def signals(sim: Simulator, now: float) -> FleetSignals:
    """The snapshot a policy sees."""
    per: dict[str, DeploymentSignals] = {}
    for d in sim.deployments:
        mine = [r for r in sim.replicas if r.pool == d.pool and r.model == d.model]
        ready = [r for r in mine if r.state == READY and not r.draining]
        for r in ready:
            r.refresh(now)
        per[d.key] = DeploymentSignals(
            model=d.model,
            pool=d.pool,
            num_ready=len(ready),
            num_starting=sum(r.state == STARTING for r in mine),
            num_draining=sum(r.draining and r.state != STOPPED for r in mine),
            num_in_flight=sum(r.num_in_flight for r in mine),
            num_waiting=sum(r.num_waiting for r in ready),
            num_running=sum(r.num_running for r in ready),
            mean_kv_usage=sum(r.kv_usage for r in ready) / len(ready) if ready else 0.0,
        )
    queued = {m: len(q) for m, q in sim._queues.items()}
    bucket = int(now / sim.timeline.bucket_s) - 1
    rate = (
        sim.timeline.arrivals[bucket] / sim.timeline.bucket_s
        if 0 <= bucket < len(sim.timeline.arrivals)
        else 0.0
    )
    return FleetSignals(now, per, queued, {"*": rate})


def apply_autoscale(sim: Simulator, now: float) -> None:
    """Evaluate the policy once and act on it (module doc)."""
    desired = sim.autoscale.desired_replicas(signals(sim, now))
    for d in sim.deployments:
        target = desired.get(d.key)
        if target is None:
            continue
        active = [
            r
            for r in sim.replicas
            if r.pool == d.pool and r.model == d.model and r.state != STOPPED and not r.draining
        ]
        for _ in range(target - len(active)):
            sim._provision(now, d)
        for replica in reversed(active[target:] if target < len(active) else []):
            if replica.state == STARTING:
                sim._stop(now, replica)
            else:
                replica.draining = True
                sim._maybe_stop_drained(now, replica)
