"""Spot pool health: when to stop putting new capacity on a spot pool.

Contract: `SpotHealth.update(signals)` returns, for every spot pool that is
unhealthy at ``signals.now_s``, the reason. A spot pool turns unhealthy when
it received ``notices_to_fallback`` preemption notices within ``backoff_s``
(counted from the deployments' cumulative ``num_notices_total``), or when one
of its replicas has been starting for longer than ``stuck_after_s`` (the cloud
has no capacity to give); it stays unhealthy until ``backoff_s`` after the
last such sign. Replicas under notice are lost capacity whatever the pool's
health: the policy counts only ready + starting replicas.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from gpufleet.autoscale.signals import FleetSignals


class SpotHealth:
    """Notice history and back-off per spot pool."""

    __slots__ = (
        "_last_total",
        "_notices",
        "_unhealthy_until",
        "_why",
        "backoff_s",
        "notices_to_fallback",
        "pools",
        "stuck_after_s",
    )

    def __init__(
        self,
        pools: Iterable[str],
        notices_to_fallback: int,
        backoff_s: float,
        stuck_after_s: float,
    ) -> None:
        self.pools = frozenset(pools)
        self.notices_to_fallback = notices_to_fallback
        self.backoff_s = backoff_s
        self.stuck_after_s = stuck_after_s
        self._last_total: dict[str, int] = {}
        self._notices: dict[str, deque[float]] = {p: deque() for p in self.pools}
        self._unhealthy_until: dict[str, float] = {}
        self._why: dict[str, str] = {}

    def update(self, signals: FleetSignals) -> dict[str, str]:
        """Unhealthy spot pools → reason (module doc)."""
        now = signals.now_s
        totals: dict[str, int] = dict.fromkeys(self.pools, 0)
        stuck: dict[str, float] = dict.fromkeys(self.pools, 0.0)
        for d in signals.deployments.values():
            if d.pool in totals:
                totals[d.pool] += d.num_notices_total
                stuck[d.pool] = max(stuck[d.pool], d.max_starting_age_s if d.num_starting else 0.0)
        for pool in self.pools:
            notices = self._notices[pool]
            new = totals[pool] - self._last_total.get(pool, 0)
            self._last_total[pool] = totals[pool]
            notices.extend([now] * max(0, new))
            while notices and notices[0] < now - self.backoff_s:
                notices.popleft()
            if len(notices) >= self.notices_to_fallback:
                why = f"{len(notices)} spot notices in {self.backoff_s:.0f} s"
                self._mark(pool, notices[-1], why)
            if stuck[pool] > self.stuck_after_s:
                self._mark(pool, now, f"a replica starting for {stuck[pool]:.0f} s (spot short)")
        return {
            pool: self._why[pool] for pool, until in self._unhealthy_until.items() if now < until
        }

    def _mark(self, pool: str, since_s: float, why: str) -> None:
        until = since_s + self.backoff_s
        if until >= self._unhealthy_until.get(pool, -float("inf")):
            self._unhealthy_until[pool] = until
            self._why[pool] = why
