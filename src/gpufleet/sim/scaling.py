"""Autoscaling in the simulator: the signals a policy sees, and acting on its decision.

Contract: `signals(sim, now)` builds the `FleetSignals` the live controller
would build from the gateway: per deployment the replicas by state (ready,
starting, draining; ``num_notice`` of the draining ones are under a spot
notice, ``num_notices_total`` counts notices since the start) and the load on
them, per model the gateway queue, the arrivals counter and the age of the
oldest queued request. `apply_autoscale` evaluates the policy once and acts:
for each deployment key the policy names, replicas that are starting or ready
(not draining) are counted; below the target, new replicas are provisioned
(cold start); above it, the newest are drained — a starting replica stops at
once, a ready one takes no new requests and stops when its last request
completes.

Spot notices are the simulator's own record (``SimReplica.under_notice``,
``Simulator.notices_by_key``), as are the arrivals per model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpufleet.sim.autoscale import DeploymentSignals, FleetSignals
from gpufleet.sim.replica import READY, STARTING, STOPPED, SimReplica

if TYPE_CHECKING:
    from gpufleet.sim.simulator import Simulator


def signals(sim: Simulator, now: float) -> FleetSignals:
    """The snapshot a policy sees (module doc)."""
    per: dict[str, DeploymentSignals] = {}
    by_key: dict[str, list[SimReplica]] = {d.key: [] for d in sim.deployments}
    for r in sim.replicas:
        by_key.setdefault(f"{r.pool}/{r.model}", []).append(r)
    for d in sim.deployments:
        mine = by_key[d.key]
        live = [r for r in mine if r.state != STOPPED]
        ready = [r for r in live if r.state == READY and not r.draining]
        starting = [r for r in live if r.state == STARTING]
        for r in ready:
            r.refresh(now)
        per[d.key] = DeploymentSignals(
            model=d.model,
            pool=d.pool,
            num_ready=len(ready),
            num_starting=len(starting),
            num_draining=sum(r.draining for r in live),
            num_in_flight=sum(r.num_in_flight for r in live),
            num_waiting=sum(r.num_waiting for r in ready),
            num_running=sum(r.num_running for r in ready),
            mean_kv_usage=sum(r.kv_usage for r in ready) / len(ready) if ready else 0.0,
            num_notice=sum(r.under_notice for r in live),
            num_notices_total=sim.notices_by_key.get(d.key, 0),
            max_starting_age_s=max((now - r.provisioned_s for r in starting), default=0.0),
        )
    queued = {m: len(q) for m, q in sim._queues.items()}
    oldest: dict[str, float] = {}
    for m, q in sim._queues.items():
        head = q.peek()
        if head is not None:
            oldest[m] = now - head.enqueued_s
    bucket = int(now / sim.timeline.bucket_s) - 1
    rate = (
        sim.timeline.arrivals[bucket] / sim.timeline.bucket_s
        if 0 <= bucket < len(sim.timeline.arrivals)
        else 0.0
    )
    return FleetSignals(
        now,
        per,
        queued,
        {"*": rate},
        num_arrivals_total_by_model=dict(sim.arrivals_by_model),
        max_queue_wait_s_by_model=oldest,
    )


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
