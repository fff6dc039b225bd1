"""The SLO autoscaler, driven on plain values: a toy fleet whose replicas start after a cold
start, fed arrival counters, in-flight and queue figures per evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gpufleet.autoscale import (
    DeploymentSignals,
    FleetSignals,
    ReplicaCapacity,
    ScalingDecision,
    SloAutoscaler,
)
from gpufleet.config import parse_config

SMALL = ReplicaCapacity(10.0, 20.0, "test")  # 8 req/s usable at the default 0.8
BIG = ReplicaCapacity(40.0, 80.0, "test")


def policy(
    autoscale: dict[str, Any] | None = None,
    deployments: dict[str, dict[str, Any]] | None = None,
) -> SloAutoscaler:
    """Model m on three pools: spot ($0.40), od ($0.80), big (H100 on-demand, $6.88)."""
    extra = deployments or {}
    pools = [
        {"name": "spot", "gpu": "l4", "capacity": "spot", "price_usd_per_gpu_hour": 0.4},
        {"name": "od", "gpu": "l4", "price_usd_per_gpu_hour": 0.8},
        {"name": "big", "gpu": "h100", "price_usd_per_gpu_hour": 6.88},
    ]
    for pool in pools:
        pool["deployments"] = [{"model": "m", "replicas": 0, **extra.get(str(pool["name"]), {})}]
    config = parse_config({
        "models": [{"name": "m"}],
        "pools": pools,
        "autoscale": {"enabled": True, "cold_start_s": 180, "interval_s": 15,
                      "idle_to_zero_s": None, **(autoscale or {})},
    })  # fmt: skip
    caps = {"spot/m": SMALL, "od/m": SMALL, "big/m": BIG}
    return SloAutoscaler(config.autoscale, config, capacities=caps)


class ToyFleet:
    """Replicas per key: ready, and starting ones with the time they become ready."""

    def __init__(self, autoscaler: SloAutoscaler, cold_start_s: float) -> None:
        self.policy = autoscaler
        self.cold_start_s = cold_start_s
        self.keys = [s.key for s in autoscaler.slots]
        self.ready = dict.fromkeys(self.keys, 0)
        self.starting: dict[str, list[float]] = {k: [] for k in self.keys}
        self.notices = dict.fromkeys(self.keys, 0)
        self.arrivals = 0.0
        self.num_changes = 0
        self.decisions: list[ScalingDecision] = []

    def usable_ready(self) -> float:
        return sum(self.ready[s.key] * s.usable_per_s for s in self.policy.slots)

    def signals(self, now: float, in_flight: int = 0, queued: int = 0) -> FleetSignals:
        for key in self.keys:
            done = [t for t in self.starting[key] if t <= now]
            self.ready[key] += len(done)
            self.starting[key] = [t for t in self.starting[key] if t > now]
        per = {
            key: DeploymentSignals(
                model="m", pool=key.split("/")[0], num_ready=self.ready[key],
                num_starting=len(self.starting[key]), num_draining=0,
                num_in_flight=in_flight if key == self.keys[0] else 0,
                num_waiting=0.0, num_running=0.0, mean_kv_usage=0.0,
                num_notices_total=self.notices[key],
                max_starting_age_s=(
                    now - min(self.starting[key]) + self.cold_start_s if self.starting[key] else 0
                ),
            )
            for key in self.keys
        }  # fmt: skip
        return FleetSignals(
            now, per, {"m": queued}, {}, num_arrivals_total_by_model={"m": int(self.arrivals)}
        )

    def step(self, now: float, in_flight: int = 0, queued: int = 0) -> ScalingDecision:
        decision = self.policy.decide(self.signals(now, in_flight, queued))
        self.decisions.append(decision)
        if decision.changes():
            self.num_changes += 1
        for key, d in decision.deployments.items():
            for _ in range(d.desired - d.current):
                self.starting[key].append(now + self.cold_start_s)
            surplus = max(0, d.current - d.desired)
            while surplus > 0 and self.starting[key]:
                self.starting[key].pop()
                surplus -= 1
            self.ready[key] -= surplus
        return decision

    def run(
        self, start_s: float, end_s: float, rate: Callable[[float], float], interval_s: float = 15
    ) -> None:
        t = start_s
        while t < end_s:
            self.arrivals += rate(t) * interval_s
            t += interval_s
            self.step(t)


def ramp(t: float) -> float:
    """5 req/s, then +1 req/s every 30 s from t = 600 s for 40 minutes, then flat at 85."""
    return 5.0 + min(max(0.0, t - 600.0), 2400.0) / 30.0


def test_scales_up_ahead_of_the_cold_start() -> None:
    """Capacity ordered a cold start ahead is ready when the load arrives; the same policy
    told the cold start is 1 s (no look-ahead) is short of the load much of the ramp."""
    ahead = ToyFleet(policy(), cold_start_s=180)
    naive = ToyFleet(policy({"cold_start_s": 1}), cold_start_s=180)
    ahead.ready["spot/m"] = naive.ready["spot/m"] = 1
    cover_ahead, cover_naive = [], []
    t = 0.0
    while t < 3600:
        for fleet in (ahead, naive):
            fleet.arrivals += ramp(t) * 15
        t += 15
        ahead.step(t)
        naive.step(t)
        if 1050 <= t <= 3000:  # the ramp, once its trend has been seen for 2.5 cold starts
            cover_ahead.append(ahead.usable_ready() / ramp(t))
            cover_naive.append(naive.usable_ready() / ramp(t))
    assert min(cover_ahead) >= 1.0
    assert sum(c < 1 for c in cover_naive) > len(cover_naive) // 4
    last = ahead.decisions[-1]
    assert math.ceil(85 / 8) <= sum(last.replicas.values()) <= math.ceil(85 / 8) + 2


def test_no_flapping_on_a_noisy_steady_load() -> None:
    """Poisson arrivals at 40 req/s for two hours: one scale-up to the right size, then none."""
    rng = np.random.default_rng(7)
    fleet = ToyFleet(policy(), cold_start_s=180)
    fleet.ready["spot/m"] = 1
    for i in range(480):
        fleet.arrivals += float(rng.poisson(40 * 15))
        fleet.step(15.0 * (i + 1))
    assert fleet.num_changes <= 2
    final = fleet.decisions[-1].replicas
    assert final["spot/m"] in (math.ceil(40 / 8), math.ceil(40 / 8) + 1)
    assert final["od/m"] == final["big/m"] == 0


def test_scale_down_waits_for_the_delay_and_cooldown() -> None:
    fleet = ToyFleet(policy({"scale_down_delay_s": 300, "cooldown_s": 120}), cold_start_s=30)
    fleet.run(0, 600, lambda t: 40.0)
    assert fleet.decisions[-1].replicas["spot/m"] >= 5
    fleet.run(600, 1200, lambda t: 8.0)
    counts = [d.replicas["spot/m"] for d in fleet.decisions]
    drop = next(i for i, n in enumerate(counts) if i >= 40 and n < counts[39])
    assert (drop + 1) * 15 - 600 >= 300 - 60  # the high demand stays in the window ~5 min
    assert counts[-1] in (1, 2)
    hold = fleet.decisions[41].deployments["spot/m"]
    assert not hold.changed and hold.reason.startswith("hold")


def test_scale_to_zero_after_the_idle_period_and_back_when_requests_queue() -> None:
    fleet = ToyFleet(policy({"idle_to_zero_s": 300}), cold_start_s=60)
    fleet.run(0, 600, lambda t: 5.0)
    assert sum(fleet.decisions[-1].replicas.values()) == 1
    fleet.run(600, 900 - 15, lambda t: 0.0)
    assert sum(fleet.decisions[-1].replicas.values()) == 1  # idle for < 300 s
    fleet.run(900 - 15, 960, lambda t: 0.0)
    decision = fleet.decisions[-1]
    assert sum(decision.replicas.values()) == 0
    assert "idle for" in decision.deployments["spot/m"].reason
    fleet.arrivals += 3  # three requests arrive and are held in the gateway's queue
    woken = fleet.step(975, queued=3)
    assert woken.replicas == {"spot/m": 1, "od/m": 0, "big/m": 0}
    assert "3 queued" in woken.deployments["spot/m"].describe()
    assert woken.deployments["spot/m"].describe().startswith("scale spot/m 0→1: ")


def test_min_replicas_are_kept_when_idle_and_max_replicas_cap_the_pool() -> None:
    autoscaler = policy(
        {"idle_to_zero_s": 60},
        {"spot": {"max_replicas": 2}, "od": {"min_replicas": 1, "max_replicas": 3}},
    )
    fleet = ToyFleet(autoscaler, cold_start_s=15)
    fleet.run(0, 300, lambda t: 0.0)
    assert fleet.decisions[-1].replicas == {"spot/m": 0, "od/m": 1, "big/m": 0}
    fleet.run(300, 600, lambda t: 100.0)
    loaded = [d.replicas for d in fleet.decisions if d.now_s > 300]
    assert max(r["spot/m"] for r in loaded) == 2  # full ...
    assert max(r["od/m"] for r in loaded) == 3
    assert all(r["od/m"] >= 1 for r in loaded)
    assert loaded[-1]["big/m"] >= math.ceil((100 - 5 * 8) / 32)  # ... then the H100s


def test_cost_order_spot_first_then_cheapest_on_demand() -> None:
    fleet = ToyFleet(policy(deployments={"spot": {"max_replicas": 2}}), cold_start_s=15)
    decision = fleet.step(15, in_flight=0, queued=0)
    fleet.arrivals += 40 * 15
    decision = fleet.step(30)
    # 40 req/s: spot is full at 2 (16 req/s), on-demand L4 ($0.10 per req/s) before H100 ($0.22)
    assert decision.replicas == {"spot/m": 2, "od/m": 3, "big/m": 0}
    assert "spot, $0.40/h" in decision.deployments["spot/m"].reason


def test_max_spot_fraction_keeps_half_on_demand() -> None:
    fleet = ToyFleet(policy({"max_spot_fraction": 0.5}), cold_start_s=15)
    fleet.step(15)
    fleet.arrivals += 64 * 15
    decision = fleet.step(30)
    assert decision.replicas == {"spot/m": 4, "od/m": 4, "big/m": 0}


def test_spot_notices_send_new_capacity_on_demand_and_keep_ready_spot() -> None:
    fleet = ToyFleet(policy({"spot_notices_to_fallback": 2}), cold_start_s=60)
    fleet.ready["spot/m"] = 5
    fleet.run(0, 300, lambda t: 36.0)
    assert fleet.decisions[-1].replicas["spot/m"] == 5
    # two spot replicas get a notice: they drain (gone), replacements are starting
    fleet.ready["spot/m"] -= 2
    fleet.starting["spot/m"] += [400.0, 400.0]
    fleet.notices["spot/m"] += 2
    fleet.arrivals += 36 * 15
    decision = fleet.step(315)
    spot, od = decision.deployments["spot/m"], decision.deployments["od/m"]
    assert spot.desired == 3  # the ready ones keep serving, the replacements are cancelled
    assert od.desired == 2  # new capacity on-demand
    assert "unhealthy: 2 spot notices" in spot.reason
    # much later, with no notice since, spot is healthy again: scale-ups go to spot
    fleet.run(330, 330 + 900 + 60, lambda t: 36.0)
    fleet.run(1290, 1500, lambda t: 60.0)
    last = fleet.decisions[-1].replicas
    assert last["spot/m"] > 3 and last["od/m"] == 2


def test_a_spot_pool_that_cannot_start_replicas_falls_back_to_on_demand() -> None:
    fleet = ToyFleet(policy(), cold_start_s=10_000)  # spot never comes
    fleet.run(0, 30, lambda t: 20.0)
    assert fleet.decisions[-1].replicas["spot/m"] == 3
    fleet.run(30, 30 + 2 * 180 + 30, lambda t: 20.0)
    decision = next(d for d in fleet.decisions if d.replicas["od/m"])
    assert decision.now_s > 2 * 180  # once the spot replicas are starting for 2 cold starts
    assert decision.replicas == {"spot/m": 0, "od/m": 3, "big/m": 0}
    assert "spot short" in decision.deployments["spot/m"].reason


def test_budget_cap_trims_the_most_expensive_capacity_first() -> None:
    fleet = ToyFleet(
        policy({"budget_usd_per_hour": 12.0}, {"spot": {"max_replicas": 4}}), cold_start_s=15
    )
    fleet.step(15)
    fleet.arrivals += 200 * 15
    decision = fleet.step(30)
    assert decision.cost_usd_per_hour <= 12.0
    # uncapped: 4 spot + 22 od ($19.20); capped: od trimmed, H100 never bought
    assert decision.replicas["spot/m"] == 4
    assert decision.replicas["big/m"] == 0
    assert decision.replicas["od/m"] == math.floor((12.0 - 4 * 0.4) / 0.8)
    assert "budget cap $12.00/h" in decision.deployments["od/m"].reason


def test_in_flight_beyond_the_capacity_estimate_scales_up() -> None:
    """Replicas slower than estimated: arrivals look fine, but requests pile up in flight."""
    fleet = ToyFleet(policy(), cold_start_s=15)
    fleet.ready["spot/m"] = 2
    fleet.arrivals += 10 * 15
    fleet.step(15)
    fleet.arrivals += 10 * 15
    decision = fleet.step(30, in_flight=80)  # 80 in flight ≈ 40 req/s at 20 per 10 req/s
    assert decision.replicas["spot/m"] == 5
    assert "80 in flight ≈ 40.0 req/s" in decision.deployments["spot/m"].reason


@pytest.mark.parametrize(("fraction", "spot", "od"), [(0.0, 0, 2), (0.3, 0, 2), (0.5, 1, 1)])
def test_max_spot_fraction_bounds_the_spot_share(fraction: float, spot: int, od: int) -> None:
    fleet = ToyFleet(policy({"max_spot_fraction": fraction}), cold_start_s=15)
    fleet.step(15)
    fleet.arrivals += 16 * 15
    decision = fleet.step(30)  # 16 req/s = two replicas; spot only in whole replicas
    assert (decision.replicas["spot/m"], decision.replicas["od/m"]) == (spot, od)
