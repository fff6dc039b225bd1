"""Simulator throughput: simulated requests per wall-second on one core, and peak memory.

Scenario (default): 1 hour of Poisson traffic at 200 req/s (prompts log-normal,
mean 512 tokens; outputs uniform 32–256) on a 32-replica mixed fleet of
Llama-3-8B (12 × H100, 12 × A100-80GB, 8 × L40S spot), routed by the
``least-load`` profile. Requests come from `compact_synthetic` (the
SyntheticWorkload's own seeded draws, no prompt text: the profile reads none).
Then how throughput scales with replicas (8/16/32 at rate ∝ replicas) and rate
(50/100/200 req/s at 32 replicas), on shorter runs.

Target: ≥ 20,000 simulated requests per wall-second with ``taskset -c 0``,
peak RSS < 2 GB (``resource.getrusage``). Raw figures: bench/results/sim.json.

    taskset -c 0 .venv/bin/python bench/sim.py
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path
from typing import Any

from gpufleet.config import parse_config
from gpufleet.plan.catalog import Catalog
from gpufleet.sim.arrival import compact_synthetic
from gpufleet.sim.options import SimOptions
from gpufleet.sim.report import build_report
from gpufleet.sim.simulator import Simulator
from gpufleet.workload import Poisson, SyntheticWorkload, parse_length

TARGET_REQ_PER_S = 20_000
TARGET_RSS_BYTES = 2 * 1024**3
RESULTS = Path(__file__).resolve().parent / "results" / "sim.json"


def fleet(num_replicas: int, profile: str) -> dict[str, Any]:
    """A mixed fleet: 3/8 H100, 3/8 A100-80GB, 2/8 L40S spot (Llama-3-8B)."""
    h100 = num_replicas * 3 // 8
    a100 = num_replicas * 3 // 8
    l40s = num_replicas - h100 - a100
    pool = lambda name, gpu, n, cap, price: {  # noqa: E731
        "name": name, "gpu": gpu, "capacity": cap, "price_usd_per_gpu_hour": price,
        "deployments": [{"model": "llama-3-8b", "replicas": n}],
    }  # fmt: skip
    return {
        "models": [{"name": "llama-3-8b", "context_length": 8192}],
        "pools": [
            pool("h100", "h100-sxm", h100, "on-demand", 6.88),
            pool("a100", "a100-80gb", a100, "on-demand", 4.10),
            pool("l40s-spot", "l40s", l40s, "spot", 1.10),
        ],
        "routing": {"profile": profile},
    }


def run_once(replicas: int, rate: float, duration_s: float, profile: str) -> dict[str, Any]:
    config = parse_config(fleet(replicas, profile))
    workload = SyntheticWorkload(
        Poisson(rate), parse_length("lognormal:512,1.0,4096"), parse_length("uniform:32,256")
    )
    sim = Simulator(config, Catalog.load(), SimOptions(duration_s=duration_s, max_drain_s=120))
    start = time.perf_counter()
    sim.run(compact_synthetic(workload, seed=1))
    wall = time.perf_counter() - start
    report = build_report(sim)
    steps = sum(r["steps"] for r in report["replicas"])
    return {
        "replicas": replicas,
        "rate_per_s": rate,
        "duration_s": duration_s,
        "requests": report["requests"],
        "finished": report["outcomes"]["finished"],
        "wall_s": wall,
        "requests_per_wall_s": report["requests"] / wall,
        "engine_steps": steps,
        "events": report["events"],
        "slo_attainment": report["slo"]["attainment"],
        "ttft_p99_s": report["latency"][0]["ttft_s"]["p99"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3600.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--profile", default="least-load")
    parser.add_argument("--scaling-duration", type=float, default=120.0)
    parser.add_argument("--no-scaling", action="store_true")
    args = parser.parse_args()
    main_run = run_once(args.replicas, args.rate, args.duration, args.profile)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    scaling: list[dict[str, Any]] = []
    if not args.no_scaling:
        for n in (8, 16, 32):
            scaling.append(run_once(n, args.rate * n / 32, args.scaling_duration, args.profile))
        for rate in (50.0, 100.0, 400.0):
            scaling.append(run_once(32, rate, args.scaling_duration, args.profile))
    ok = main_run["requests_per_wall_s"] >= TARGET_REQ_PER_S and rss < TARGET_RSS_BYTES
    print(f"{'replicas':>8} {'rate/s':>7} {'sim s':>6} {'requests':>9} {'steps':>9} "
          f"{'wall s':>7} {'req/wall-s':>10} {'steps/wall-s':>12}")  # fmt: skip
    for row in (main_run, *scaling):
        steps_per_s = row["engine_steps"] / row["wall_s"]
        print(
            f"{row['replicas']:>8} {row['rate_per_s']:>7.0f} {row['duration_s']:>6.0f} "
            f"{row['requests']:>9} {row['engine_steps']:>9} {row['wall_s']:>7.1f} "
            f"{row['requests_per_wall_s']:>10.0f} {steps_per_s:>12.0f}"
        )
    print(f"peak RSS {rss / 2**20:.0f} MiB; target ≥ {TARGET_REQ_PER_S} req/wall-s, < 2 GiB: "
          f"{'MET' if ok else 'NOT MET'}")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": platform.platform(), "python": platform.python_version(),
        "main": main_run, "peak_rss_bytes": rss, "scaling": scaling, "target_met": ok,
    }, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
