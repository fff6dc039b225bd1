"""The SLO autoscaler inside the simulator: the signals it is given, and a load step."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from typing import Any

from gpufleet.autoscale import FleetSignals, SloAutoscaler
from gpufleet.config import parse_config
from gpufleet.plan.catalog import Catalog
from gpufleet.sim.arrival import SimArrival, compact_synthetic
from gpufleet.sim.lifecycle import ColdStart, SpotPolicy
from gpufleet.sim.options import SimOptions
from gpufleet.sim.report import build_report
from gpufleet.sim.simulator import Simulator
from gpufleet.workload import Poisson, Step, SyntheticWorkload, TrafficClass, parse_length

CATALOG = Catalog.load()
MODELS = ("llama-3-8b", "mistral-7b")


def fleet(replicas: int = 1, **autoscale: Any) -> dict[str, Any]:
    return {
        "models": [{"name": m, "context_length": 4096} for m in MODELS],
        "pools": [
            {"name": "spot", "gpu": "l4", "capacity": "spot", "price_usd_per_gpu_hour": 0.4,
             "deployments": [{"model": m, "replicas": replicas} for m in MODELS]},
            {"name": "od", "gpu": "l4", "price_usd_per_gpu_hour": 0.8,
             "deployments": [{"model": m, "replicas": replicas} for m in MODELS]},
        ],
        "routing": {"profile": "least-load"},
        "autoscale": {"enabled": True, "cold_start_s": 40, "interval_s": 10, **autoscale},
    }  # fmt: skip


def two_models(rates: Mapping[str, Any], seed: int = 5) -> Iterator[SimArrival]:
    streams = [
        compact_synthetic(
            SyntheticWorkload(
                rates[m], parse_length("lognormal:512,0.8,2048"), parse_length("uniform:64,448"),
                (TrafficClass(model=m),),
            ),
            seed + i,
        )
        for i, m in enumerate(MODELS)
    ]  # fmt: skip
    return heapq.merge(*streams, key=lambda a: a.arrival_s)


class Recording:
    """Keeps every snapshot; scales the on-demand pool of both models down to zero."""

    def __init__(self) -> None:
        self.seen: list[FleetSignals] = []

    @property
    def interval_s(self) -> float:
        return 10.0

    def desired_replicas(self, signals: FleetSignals) -> Mapping[str, int]:
        self.seen.append(signals)
        return {f"od/{m}": 0 for m in MODELS} if signals.now_s >= 60 else {}


def test_signals_count_arrivals_per_model_and_spot_notices_apart_from_scale_downs() -> None:
    recording = Recording()
    options = SimOptions(
        duration_s=300, cold_start=ColdStart(provision_s=5, engine_init_s=5),
        default_spot=SpotPolicy(interruptions_per_hour=40, notice_s=30), slo_ttft_s=2.0,
    )  # fmt: skip
    sim = Simulator(parse_config(fleet(replicas=2)), CATALOG, options, autoscale=recording)
    sim.run(two_models({"llama-3-8b": Poisson(1.0), "mistral-7b": Poisson(0.5)}))
    last = recording.seen[-1]
    model_index = list(sim.log.model_index)
    for i, m in enumerate(MODELS):
        arrived = sum(
            1
            for row, x in enumerate(model_index)
            if x == i and sim.log.arrival_s[row] <= last.now_s
        )
        assert last.num_arrivals_total_by_model[m] == arrived > 0
    assert (
        last.num_arrivals_total_by_model["llama-3-8b"]
        > last.num_arrivals_total_by_model["mistral-7b"]
    )
    spot_notices = sum(last.deployments[f"spot/{m}"].num_notices_total for m in MODELS)
    assert spot_notices == sim.num_spot_interruptions > 0
    for s in recording.seen:
        for m in MODELS:
            od = s.deployments[f"od/{m}"]
            assert od.num_notice == od.num_notices_total == 0  # drained by scale-down
            spot = s.deployments[f"spot/{m}"]
            assert spot.num_notice <= spot.num_draining
    assert all(last.deployments[f"od/{m}"].num_active == 0 for m in MODELS)


def test_a_load_step_is_met_from_spot_first_within_the_slo() -> None:
    config = parse_config(fleet(replicas=0, cold_start_s=15))
    policy = SloAutoscaler(config.autoscale, config, CATALOG)
    options = SimOptions(
        duration_s=900,
        cold_start=ColdStart(
            provision_s=5, download_gb_per_s=10, load_gb_per_s=20, engine_init_s=5
        ),
        default_spot=SpotPolicy(interruptions_per_hour=0), slo_ttft_s=2.0, slo_itl_s=0.1,
    )  # fmt: skip
    sim = Simulator(config, CATALOG, options, autoscale=policy)
    # from zero: the first requests wait at the gateway (deadline 30 s) for a replica
    sim.run(two_models({
        "llama-3-8b": Step(((0.0, 1.0), (300.0, 5.0))),
        "mistral-7b": Step(((0.0, 0.5), (300.0, 0.5))),
    }))  # fmt: skip
    report = build_report(sim)
    decision = policy.last_decision
    assert decision is not None
    llama_spot = decision.deployments["spot/llama-3-8b"].desired
    usable = next(s.usable_per_s for s in policy.slots if s.key == "spot/llama-3-8b")
    assert llama_spot >= 5.0 / usable  # sized for the step
    assert decision.deployments["od/llama-3-8b"].desired == 0  # spot first
    assert decision.deployments["od/mistral-7b"].desired == 0
    assert report["outcomes"]["shed"] == report["outcomes"]["failed"] == 0
    # misses only while the first replicas cold-start and while the step's replicas start
    assert report["slo"]["attainment"] >= 0.9
    late = next(g for g in report["latency"] if g["model"] == "mistral-7b")
    assert late["finished"] == late["requests"]
