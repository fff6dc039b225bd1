"""Simulator invariants on seeded runs: time order, accounting, KV, cost, lifecycle."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from gpufleet.config import parse_config
from gpufleet.plan.catalog import Catalog
from gpufleet.sim.arrival import SimArrival, compact_synthetic
from gpufleet.sim.autoscale import FleetSignals
from gpufleet.sim.errors import SimulationError
from gpufleet.sim.events import EventLoop
from gpufleet.sim.lifecycle import ColdStart, SpotPolicy
from gpufleet.sim.options import SimOptions
from gpufleet.sim.records import FAILED, FINISHED, OPEN, SHED
from gpufleet.sim.report import build_report
from gpufleet.sim.simulator import Simulator
from gpufleet.workload import Poisson, SyntheticWorkload, parse_length

CATALOG = Catalog.load()


def fleet(profile: str = "least-load", spot: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "models": [{"name": "llama-3-8b", "context_length": 4096}],
        "pools": [
            {"name": "h100", "gpu": "h100-sxm", "price_usd_per_gpu_hour": 6.88,
             "deployments": [{"model": "llama-3-8b", "replicas": 2}]},
            {"name": "l40s", "gpu": "l40s", "price_usd_per_gpu_hour": 1.1,
             "capacity": "spot" if spot else "on-demand",
             "deployments": [{"model": "llama-3-8b", "replicas": 2}]},
        ],
        "routing": {"profile": profile},
        **extra,
    }  # fmt: skip


def arrivals(rate: float, seed: int = 3, prompt: str = "lognormal:400,1.0,3000",
             output: str = "uniform:16,200") -> Iterator[SimArrival]:  # fmt: skip
    workload = SyntheticWorkload(Poisson(rate), parse_length(prompt), parse_length(output))
    return compact_synthetic(workload, seed)


class Counting:
    """Wraps an arrival iterator and counts what the simulator pulled within the horizon."""

    def __init__(self, source: Iterator[SimArrival], horizon_s: float) -> None:
        self.source, self.horizon_s, self.count = source, horizon_s, 0

    def __iter__(self) -> Iterator[SimArrival]:
        return self

    def __next__(self) -> SimArrival:
        item = next(self.source)
        if item.arrival_s <= self.horizon_s:
            self.count += 1
        return item


def simulate(config: Mapping[str, Any], options: SimOptions, rate: float, **kw: Any) -> Simulator:
    sim = Simulator(parse_config(dict(config)), CATALOG, options, **kw)
    sim.run(arrivals(rate))
    return sim


def test_event_loop_refuses_the_past_and_orders_ties() -> None:
    loop = EventLoop()
    seen: list[str] = []
    loop.schedule(1.0, lambda t, p: seen.append(p), "a")
    loop.schedule(1.0, lambda t, p: seen.append(p), "b")
    loop.schedule(0.5, lambda t, p: [(0.25, lambda t2, p2: None, None)], None)
    with pytest.raises(SimulationError):
        loop.run()
    loop2 = EventLoop()
    loop2.schedule(1.0, lambda t, p: seen.append(p), "a")
    loop2.schedule(1.0, lambda t, p: seen.append(p), "b")
    loop2.run()
    assert seen == ["a", "b"]
    with pytest.raises(SimulationError):
        loop2.schedule(0.5, lambda t, p: None)


def test_every_request_is_closed_exactly_once_and_kv_is_never_over_allocated() -> None:
    options = SimOptions(duration_s=30, check_invariants=True, seed=1)
    sim = Simulator(parse_config(fleet()), CATALOG, options)
    source = Counting(arrivals(40.0), options.duration_s)
    times: list[float] = []
    sim.run(source, on_progress=times.append)
    log = sim.log
    assert len(log) == source.count > 1000
    assert log.num_open() == 0
    outcomes = list(log.outcome)
    assert OPEN not in outcomes
    assert outcomes.count(FINISHED) + outcomes.count(SHED) + outcomes.count(FAILED) == len(log)
    assert sim.num_kv_checks > 1000
    assert times == sorted(times)
    report = build_report(sim)
    assert report["outcomes"]["finished"] == len(log)
    assert sum(r["requests"] for r in report["replicas"]) == len(log)


def test_overload_preempts_in_the_engine_and_sheds_at_the_deadline_with_causes() -> None:
    config = fleet(
        admission={"max_wait_s": 2.0, "max_queue_len": 50},
        routing={"profile": "default"},
    )
    options = SimOptions(duration_s=20, check_invariants=True, max_drain_s=30)
    sim = Simulator(parse_config(config), CATALOG, options)
    sim.run(arrivals(400.0, prompt="uniform:2000,3500", output="uniform:200,500"))
    report = build_report(sim)
    outcomes = report["outcomes"]
    assert sim.log.num_open() == 0
    assert outcomes["shed"] > 0
    assert set(outcomes["causes"]) <= {"deadline", "queue-full", "displaced", "unfinished"}
    assert outcomes["finished"] + outcomes["shed"] + outcomes["failed"] == report["requests"]


def test_cost_is_gpu_hours_times_price() -> None:
    sim = simulate(fleet(), SimOptions(duration_s=60), 10.0)
    report = build_report(sim)
    for pool in report["pools"]:
        assert pool["cost_usd"] == pytest.approx(pool["gpu_hours"] * pool["price_usd_per_gpu_hour"])
    # 4 single-GPU replicas, warm, billed from 0 to the end of the run.
    assert sum(p["gpu_hours"] for p in report["pools"]) == pytest.approx(4 * sim.end_s / 3600)
    total = sum(p["cost_usd"] for p in report["pools"])
    assert report["cost"]["total_usd"] == pytest.approx(total)


def test_spot_interruptions_drain_replace_and_account_for_every_request() -> None:
    options = SimOptions(
        duration_s=600,
        default_spot=SpotPolicy(interruptions_per_hour=30.0, notice_s=5.0),
        cold_start=ColdStart(provision_s=10, engine_init_s=5),
        check_invariants=True,
    )
    sim = simulate(fleet(spot=True), options, 20.0)
    report = build_report(sim)
    assert report["preemptions"]["spot_interruptions"] > 0
    assert sim.log.num_open() == 0
    spot_pool = next(p for p in report["pools"] if p["pool"] == "l40s")
    assert spot_pool["replicas_started"] > 2  # replacements were provisioned
    causes = report["outcomes"]["causes"]
    assert set(causes) <= {"spot-preemption", "unfinished"}


class ScaleTo:
    def __init__(self, target: int) -> None:
        self.target = target
        self.calls = 0

    @property
    def interval_s(self) -> float:
        return 10.0

    def desired_replicas(self, signals: FleetSignals) -> Mapping[str, int]:
        self.calls += 1
        assert set(signals.deployments) == {"h100/llama-3-8b", "l40s/llama-3-8b"}
        return {"h100/llama-3-8b": self.target}


def test_autoscaling_hook_provisions_with_a_cold_start_and_drains() -> None:
    up = ScaleTo(4)
    options = SimOptions(duration_s=120, cold_start=ColdStart(provision_s=20, engine_init_s=10))
    sim = simulate(fleet(), options, 10.0, autoscale=up)
    assert up.calls >= 10
    new = [r for r in sim.replicas if r.pool == "h100" and r.provisioned_s > 0]
    assert len(new) == 2
    assert all(r.ready_s - r.provisioned_s > 30 for r in new)
    down = ScaleTo(1)
    sim = simulate(fleet(), SimOptions(duration_s=60), 10.0, autoscale=down)
    assert sum(r.pool == "h100" and r.stopped_s < 60 for r in sim.replicas) == 1
    assert sim.log.num_open() == 0


def run_log(
    config: Mapping[str, Any],
    options: SimOptions,
    rate: float,
    prompt: str = "lognormal:400,1.0,3000",
    output: str = "uniform:16,300",
    **kw: Any,
) -> Simulator:
    sim = Simulator(parse_config(dict(config)), CATALOG, options, **kw)
    sim.run(arrivals(rate, prompt=prompt, output=output))
    return sim


def outcome_columns(sim: Simulator) -> tuple[list[Any], ...]:
    log = sim.log
    steps = [r.engine.stats.num_steps for r in sim.replicas]
    preemptions = [r.engine.stats.num_preemptions for r in sim.replicas]
    return (
        [repr(x) for x in log.first_token_s],  # repr: NaN == NaN, floats compared exactly
        [repr(x) for x in log.finish_s],
        list(log.replica_index),
        list(log.outcome),
        list(log.cause),
        steps,
        preemptions,
        [repr(sim.end_s), repr(build_report(sim)["cost"]["total_usd"])],
    )


@pytest.mark.parametrize(
    ("profile", "spot", "rate", "long"),
    [
        ("least-load", False, 60.0, False),
        ("default", True, 60.0, False),
        ("default", False, 250.0, False),
        ("least-load", False, 40.0, True),
    ],
)
def test_decode_runs_change_nothing_the_simulation_computes(
    profile: str, spot: bool, rate: float, long: bool
) -> None:
    """Decode runs (many decode steps per engine call, settled at dispatches, scrapes,
    aborts) against stepping one step at a time: the same routing decisions, token
    times, outcomes, engine steps and preemptions, float for float — under spot
    interruptions (aborts mid-run), autoscaling and KV pressure (preemptions)."""
    options = SimOptions(
        duration_s=40,
        seed=5,
        max_drain_s=60,
        default_spot=SpotPolicy(interruptions_per_hour=120.0, notice_s=3.0),
        cold_start=ColdStart(provision_s=5, engine_init_s=2),
        check_invariants=True,
    )
    config = fleet(profile, spot=spot)
    lengths = {"prompt": "uniform:1500,3000", "output": "uniform:500,1000"} if long else {}
    fast = run_log(config, options, rate, autoscale=ScaleTo(3), **lengths)
    slow = run_log(config, options, rate, autoscale=ScaleTo(3), decode_runs=False, **lengths)
    assert outcome_columns(fast) == outcome_columns(slow)
    assert len(fast.log) > 1500
    if spot:
        assert fast.num_spot_interruptions > 0
    if long:  # KV pressure: runs stop short of a step that preempts
        assert sum(r.engine.stats.num_preemptions for r in fast.replicas) > 100
    if rate < 200 and not long:  # (queues and KV pressure leave few decode-only runs)
        assert fast.loop.num_events < 0.75 * slow.loop.num_events


def test_runs_are_reproducible_with_a_seed() -> None:
    """Tie-breaking pickers are seeded from the run's seed (else each run would differ)."""
    options = SimOptions(duration_s=20, seed=9)
    first = run_log(fleet("least-load"), options, 40.0)
    second = run_log(fleet("least-load"), options, 40.0)
    assert outcome_columns(first) == outcome_columns(second)


def test_a_higher_band_arrival_goes_past_the_queue_at_once_as_in_the_gateway() -> None:
    """Arrivals behind a queue are queued and the queue pumped right away (the gateway's
    admission gate does the same): an interactive request is dispatched on arrival while
    batch requests wait for capacity."""
    from gpufleet.sim.arrival import from_specs
    from gpufleet.workload import TrafficClass

    classes = (
        TrafficClass("jobs", weight=9.0, request_class="batch"),
        TrafficClass("chat", weight=1.0, request_class="interactive"),
    )
    workload = SyntheticWorkload(
        Poisson(200.0), parse_length("uniform:1500,3000"), parse_length("uniform:100,300"), classes
    )
    sim = Simulator(parse_config(fleet(routing={"profile": "default"})), CATALOG,
                    SimOptions(duration_s=30, max_drain_s=120))  # fmt: skip
    sim.run(from_specs(workload.requests(seed=4), with_text=False))
    rows = {row["class"]: row for row in build_report(sim)["latency"]}
    assert rows["batch"]["queue_wait_s"]["p90"] > 1.0  # overloaded: batch waits
    assert rows["interactive"]["queue_wait_s"]["p99"] == 0.0
