"""Load and replicas over time, in fixed buckets (for the report's plots).

Contract: ``arrival(t)`` counts an arrival into bucket ``floor(t / bucket_s)``;
``sample(t, replicas, queued)`` records, at the start of each bucket, the
replicas ready (routable) and starting per pool, requests in flight and queued.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpufleet.sim.replica import READY, STARTING, SimReplica


class Timeline:
    """Bucketed series; lists grow as virtual time advances."""

    __slots__ = ("arrivals", "bucket_s", "in_flight", "pools", "queued", "ready", "starting", "t_s")

    def __init__(self, bucket_s: float, pools: Sequence[str]) -> None:
        self.bucket_s = bucket_s
        self.pools = list(dict.fromkeys(pools))
        self.arrivals: list[int] = []
        self.t_s: list[float] = []
        self.in_flight: list[int] = []
        self.queued: list[int] = []
        self.ready: dict[str, list[int]] = {p: [] for p in self.pools}
        self.starting: dict[str, list[int]] = {p: [] for p in self.pools}

    def arrival(self, t_s: float) -> None:
        bucket = int(t_s / self.bucket_s)
        arrivals = self.arrivals
        while len(arrivals) <= bucket:
            arrivals.append(0)
        arrivals[bucket] += 1

    def sample(self, t_s: float, replicas: Sequence[SimReplica], queued: int) -> None:
        self.t_s.append(t_s)
        self.queued.append(queued)
        self.in_flight.append(sum(r.num_in_flight for r in replicas))
        ready = dict.fromkeys(self.pools, 0)
        starting = dict.fromkeys(self.pools, 0)
        for r in replicas:
            if r.state == READY and not r.draining:
                ready[r.pool] += 1
            elif r.state == STARTING:
                starting[r.pool] += 1
        for pool in self.pools:
            self.ready[pool].append(ready[pool])
            self.starting[pool].append(starting[pool])
