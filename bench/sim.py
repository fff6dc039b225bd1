"""Simulator throughput: simulated requests per wall-second on one core, and peak memory.

Scenario (default): 1 hour of Poisson traffic at 200 req/s (prompts log-normal,
mean 512 tokens; outputs uniform 32–256) on a 32-replica mixed fleet of
Llama-3-8B (12 × H100, 12 × A100-80GB, 8 × L40S spot), routed by the
``least-load`` profile. Requests come from `compact_synthetic` (the
SyntheticWorkload's own seeded draws, no prompt text: the profile reads none; each
prompt promises it is unique, so the engines keep its KV blocks private: O(1) pool work).

Side by side, each in its own process: the mypyc-compiled build (`make compiled`,
``build/compiled``; see setup.py) and pure Python, on the same scenario; their
simulated results must be identical (requests, engine steps, events, SLO attainment,
TTFT p99), else the bench fails. Then, on the compiled build, how throughput scales
with replicas (``--scaling-replicas``, rate ∝ replicas) and rate (``--scaling-rates``
at ``--replicas``), on shorter runs. ``--repeat N`` runs the main scenario N times per
build and keeps the median (the machine may be shared: CPU seconds of the process are
reported beside wall seconds); ``--step-by-step`` simulates every engine step one at a
time (no decode runs: the reference the fast path is checked against, same results).

Target: ≥ 20,000 simulated requests per wall-second with ``taskset -c 0``,
peak RSS < 2 GB (``resource.getrusage``). Raw figures: bench/results/sim.json.

    make compiled && taskset -c 0 .venv/bin/python bench/sim.py
    taskset -c 0 .venv/bin/python bench/sim.py --duration 300 --repeat 3 --no-scaling
    taskset -c 0 .venv/bin/python bench/sim.py --builds pure     # no compiled build
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
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
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sim.json"
COMPILED_BUILD = ROOT / "build" / "compiled"
SAME_RESULT = ("requests", "finished", "engine_steps", "events", "slo_attainment", "ttft_p99_s")
"""What the two builds must agree on exactly (everything but the timings)."""


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


def run_once(
    replicas: int, rate: float, duration_s: float, profile: str, decode_runs: bool = True
) -> dict[str, Any]:
    config = parse_config(fleet(replicas, profile))
    workload = SyntheticWorkload(
        Poisson(rate), parse_length("lognormal:512,1.0,4096"), parse_length("uniform:32,256")
    )
    options = SimOptions(duration_s=duration_s, max_drain_s=120)
    sim = Simulator(config, Catalog.load(), options, decode_runs=decode_runs)
    start, start_cpu = time.perf_counter(), time.process_time()
    sim.run(compact_synthetic(workload, seed=1))
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    report = build_report(sim)
    steps = sum(r["steps"] for r in report["replicas"])
    return {
        "replicas": replicas,
        "rate_per_s": rate,
        "duration_s": duration_s,
        "requests": report["requests"],
        "finished": report["outcomes"]["finished"],
        "wall_s": wall,
        "cpu_s": cpu,
        "requests_per_wall_s": report["requests"] / wall,
        "requests_per_cpu_s": report["requests"] / cpu,
        "engine_steps": steps,
        "events": report["events"],
        "slo_attainment": report["slo"]["attainment"],
        "ttft_p99_s": report["latency"][0]["ttft_s"]["p99"],
    }


def numbers(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def build_name() -> str:
    """Which build this process imported: 'compiled' (mypyc extensions) or 'pure'."""
    from gpufleet.engine import kv_cache

    return "pure" if kv_cache.__file__.endswith(".py") else "compiled"


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """This process's runs (main scenario, then scaling unless --no-scaling)."""
    runs_on = not args.step_by_step
    runs = [
        run_once(args.replicas, args.rate, args.duration, args.profile, runs_on)
        for _ in range(args.repeat)
    ]
    main_run = sorted(runs, key=lambda row: row["wall_s"])[len(runs) // 2]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    scaling: list[dict[str, Any]] = []
    if not args.no_scaling:
        for n in args.scaling_replicas:
            rate = args.rate * n / args.replicas
            scaling.append(run_once(int(n), rate, args.scaling_duration, args.profile, runs_on))
        for rate in args.scaling_rates:
            scaling.append(
                run_once(args.replicas, rate, args.scaling_duration, args.profile, runs_on)
            )
    return {"build": build_name(), "main": main_run, "main_runs": runs,
            "peak_rss_bytes": rss, "scaling": scaling}  # fmt: skip


def run_build(build: str, scaling: bool) -> dict[str, Any]:
    """Run `worker` in a child process importing ``build``, on this command line's
    arguments (``--builds`` is ignored there); its JSON report."""
    env = dict(os.environ)
    if build == "compiled":
        env["PYTHONPATH"] = os.pathsep.join(
            [str(COMPILED_BUILD), *filter(None, [env.get("PYTHONPATH")])]
        )
    command = [sys.executable, __file__, *sys.argv[1:], "--worker"]
    if not scaling:
        command.append("--no-scaling")
    print(f"{build}: running…", file=sys.stderr, flush=True)
    child = subprocess.run(command, env=env, stdout=subprocess.PIPE, check=False)
    if child.returncode != 0:
        raise SystemExit(f"the {build} run failed (exit {child.returncode})")
    report: dict[str, Any] = json.loads(child.stdout)
    if report["build"] != build:
        raise SystemExit(
            f"asked for the {build} build but imported the {report['build']} one"
            + (" — run `make compiled` first" if build == "compiled" else "")
        )
    return report


def print_rows(rows: list[tuple[str, dict[str, Any]]]) -> None:
    print(f"{'build':>8} {'replicas':>8} {'rate/s':>7} {'sim s':>6} {'requests':>9} "
          f"{'steps':>9} {'events':>9} {'wall s':>7} {'cpu s':>7} {'req/wall-s':>10} "
          f"{'req/cpu-s':>9} {'steps/wall-s':>12}")  # fmt: skip
    for build, row in rows:
        steps_per_s = row["engine_steps"] / row["wall_s"]
        print(
            f"{build:>8} {row['replicas']:>8} {row['rate_per_s']:>7.0f} "
            f"{row['duration_s']:>6.0f} {row['requests']:>9} {row['engine_steps']:>9} "
            f"{row['events']:>9} {row['wall_s']:>7.1f} {row['cpu_s']:>7.1f} "
            f"{row['requests_per_wall_s']:>10.0f} {row['requests_per_cpu_s']:>9.0f} "
            f"{steps_per_s:>12.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3600.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--profile", default="least-load")
    parser.add_argument("--repeat", type=int, default=1, help="main runs; the median is kept")
    parser.add_argument("--step-by-step", action="store_true", help="no decode runs")
    parser.add_argument("--scaling-duration", type=float, default=120.0)
    parser.add_argument("--scaling-replicas", type=numbers, default=[8, 16, 32, 64])
    parser.add_argument("--scaling-rates", type=numbers, default=[50, 100, 200, 400])
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument(
        "--builds", choices=("both", "compiled", "pure"), default="both",
        help="compiled (build/compiled, `make compiled`), pure Python, or both side by side",
    )  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duration <= 0 or args.rate <= 0 or args.replicas < 3 or args.repeat < 1:
        parser.error("--duration and --rate must be positive, --replicas ≥ 3, --repeat ≥ 1")
    if args.worker:
        print(json.dumps(worker(args)))
        return
    builds = ("compiled", "pure") if args.builds == "both" else (args.builds,)
    # scaling runs on the first (fastest) build only
    reports = {b: run_build(b, not args.no_scaling and i == 0) for i, b in enumerate(builds)}
    first = reports[builds[0]]
    rows = [(b, reports[b]["main"]) for b in builds]
    rows += [(builds[0], row) for row in first["scaling"]]
    print_rows(rows)
    for build in builds:
        if len(reports[build]["main_runs"]) > 1:
            walls = ", ".join(
                f"{r['requests_per_wall_s']:.0f}" for r in reports[build]["main_runs"]
            )
            print(f"{build} main runs (req/wall-s): {walls}; median kept")
    identical = all(
        reports[b]["main"][key] == first["main"][key] for b in builds for key in SAME_RESULT
    )
    if len(builds) > 1:
        pure, compiled = reports["pure"]["main"], reports["compiled"]["main"]
        speedup = compiled["requests_per_wall_s"] / pure["requests_per_wall_s"]
        print(f"compiled/pure: ×{speedup:.2f} req/wall-s; simulated results "
              f"{'identical' if identical else 'DIFFER'} ({', '.join(SAME_RESULT)})")  # fmt: skip
    rss = first["peak_rss_bytes"]
    best = first["main"]
    ok = best["requests_per_wall_s"] >= TARGET_REQ_PER_S and rss < TARGET_RSS_BYTES
    print(f"{builds[0]} build: {best['requests_per_wall_s']:.0f} req/wall-s, peak RSS "
          f"{rss / 2**20:.0f} MiB; target ≥ {TARGET_REQ_PER_S} req/wall-s, < 2 GiB: "
          f"{'MET' if ok else 'NOT MET'}")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": platform.platform(), "python": platform.python_version(),
        "decode_runs": not args.step_by_step, "builds": reports, "identical": identical,
        "main": best, "peak_rss_bytes": rss, "target_met": ok,
    }, indent=2) + "\n")  # fmt: skip
    if not identical:
        raise SystemExit("the builds' simulated results differ")


if __name__ == "__main__":
    main()
