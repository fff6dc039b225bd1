"""Autoscaling study: static peak provisioning vs a KEDA-style threshold autoscaler vs
gpufleet's SLO autoscaler, on a simulated day.

Scenario: 24 hours of diurnal Poisson traffic (peak/trough 5) for two models —
Llama-3-8B peaking at 14:00 and Mistral-7B at 20:00 — on L4 GPUs: an ``l4-spot``
pool ($0.40/GPU-h, spot) and an ``l4`` pool ($0.805/GPU-h, on-demand), each
serving both models. Prompts log-normal (mean 512 tokens), outputs uniform
64–448 (mean 256). Spot replicas are interrupted at 5% per hour with 120 s
notice (replaced at once, as a Kubernetes Deployment would); cold start by
the simulator's default model (about 110 s for an 8B model; policies are told
110 s). SLO: TTFT ≤ 2 s and mean ITL ≤ 100 ms per request; shed and failed
requests are misses.

Policies (all on the same workload, seed and fleet shape):

- **static-peak** — replicas for the peak at all times, half spot, half on-demand.
- **threshold** — a KEDA ScaledObject per deployment on the engines' waiting
  requests, target 5 per replica, HPA semantics (5 min scale-down window), min 1.
- **threshold-inflight** — the ScaledObject ``gpufleet render`` emits: the
  gateway's queue share + requests in flight per deployment, target 16 per replica.
- **gpufleet** — `SloAutoscaler` with the fleet's ``autoscale:`` settings
  (planner capacity at the SLO, forecast at t + cold start, spot first).
- **gpufleet-spot≤50%** — the same with ``max_spot_fraction: 0.5``, i.e. the
  static fleet's spot share, to separate scaling savings from spot savings.

Time speed-up (``--speedup``, default 8, so that the five runs take minutes on one
core): the day is simulated k times faster — the diurnal period, the cold start,
the policies' intervals, windows and cooldowns are divided by k and spot
interruptions per hour multiplied by k — while requests (engine steps, TTFT,
ITL) run in real time, and the 120 s notice stays 120 s of request time.
GPU-hours and dollars are multiplied by k back to a real day. What it changes:
the capacity gap after a spot notice (one cold start) is k times shorter, and
the rate estimates are noisier (k times fewer arrivals per interval).
``--speedup 1`` simulates the real day (about k times longer to run).

Prints a table and writes bench/results/autoscale.json plus
autoscale_replicas.png and autoscale_latency.png. Target: gpufleet ≤ 60% of
static-peak cost at ≥ 99% SLO attainment, and cheaper than threshold at equal
or better attainment.

    taskset -c 0 .venv/bin/python bench/autoscale.py            # or: make bench-autoscale
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import platform
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gpufleet.autoscale import FleetSignals, SloAutoscaler, ThresholdPolicy
from gpufleet.autoscale.signals import AutoscalePolicy
from gpufleet.config import FleetConfig, parse_config
from gpufleet.plan.catalog import Catalog
from gpufleet.sim.arrival import SimArrival, compact_synthetic
from gpufleet.sim.lifecycle import ColdStart, SpotPolicy
from gpufleet.sim.options import SimOptions
from gpufleet.sim.records import FINISHED
from gpufleet.sim.report import build_report
from gpufleet.sim.simulator import Simulator
from gpufleet.workload import Diurnal, SyntheticWorkload, TrafficClass, parse_length

RESULTS = Path(__file__).resolve().parent / "results"
DAY_S = 86_400.0
MODELS = {
    # model: (mean req/s, hour of the peak)
    "llama-3-8b": (5.4, 14.0),
    "mistral-7b": (5.0, 20.0),
}
PEAK_TO_TROUGH = 5.0
SPOT_PER_HOUR = 0.05
NOTICE_S = 120.0
SLO_TTFT_S, SLO_ITL_S = 2.0, 0.1
PROMPT, OUTPUT = "lognormal:512,0.8,2048", "uniform:64,448"
PRICES = {"l4-spot": 0.40, "l4": 0.805}
RECORD_EVERY_S = 60.0
SPEEDUP = 8.0


def fleet_doc(
    replicas: Mapping[str, Mapping[str, int]], spot_fraction: float, k: float
) -> dict[str, Any]:
    """The study's fleet; ``replicas[pool][model]`` is the starting count; control-plane
    times divided by the speed-up ``k``."""
    pools = []
    for pool, price in PRICES.items():
        pools.append({
            "name": pool, "gpu": "l4", "price_usd_per_gpu_hour": price,
            "capacity": "spot" if pool.endswith("spot") else "on-demand",
            "deployments": [
                {"model": m, "replicas": replicas[pool][m], "max_replicas": 32} for m in MODELS
            ],
        })  # fmt: skip
    return {
        "models": [{"name": m, "context_length": 4096} for m in MODELS],
        "pools": pools,
        "routing": {"profile": "least-load"},
        "autoscale": {
            "enabled": True,
            "ttft_s": SLO_TTFT_S,
            "itl_s": SLO_ITL_S,
            "prompt_tokens": 512,
            "output_tokens": 256,
            "interval_s": 15.0 / k,
            "cold_start_s": 110.0 / k,
            "scale_down_delay_s": 300.0 / k,
            "cooldown_s": 120.0 / k,
            "spot_backoff_s": 900.0 / k,
            "max_spot_fraction": spot_fraction,
            "idle_to_zero_s": None,
        },
    }


def diurnal(model: str, k: float) -> Diurnal:
    """The model's day, ``k`` times faster."""
    mean, peak_h = MODELS[model]
    return Diurnal(mean, PEAK_TO_TROUGH, DAY_S / k, peak_h * 3600 / k)


def arrivals(seed: int, k: float) -> Iterator[SimArrival]:
    """Both models' diurnal streams, merged by arrival time."""
    streams = []
    for i, model in enumerate(MODELS):
        workload = SyntheticWorkload(
            diurnal(model, k),
            parse_length(PROMPT),
            parse_length(OUTPUT),
            (TrafficClass(model=model),),
        )
        streams.append(compact_synthetic(workload, seed=seed * 10 + i))
    return heapq.merge(*streams, key=lambda a: a.arrival_s)


class Recorder:
    """Wraps a policy: records replicas and load per model every evaluation."""

    def __init__(self, inner: AutoscalePolicy | None, every_s: float) -> None:
        self.inner = inner
        self._every_s = every_s
        self.t_s: list[float] = []
        self.replicas: dict[str, list[int]] = {}
        self.changes = 0
        self._last: dict[str, int] = {}

    @property
    def interval_s(self) -> float:
        return self.inner.interval_s if self.inner is not None else self._every_s

    def desired_replicas(self, signals: FleetSignals) -> Mapping[str, int]:
        out = self.inner.desired_replicas(signals) if self.inner is not None else {}
        for key, n in out.items():
            current = signals.deployments[key].num_active
            if n != current and self._last.get(key) != n:
                self.changes += 1
            self._last[key] = n
        if not self.t_s or signals.now_s - self.t_s[-1] >= RECORD_EVERY_S - 1e-9:
            self.t_s.append(signals.now_s)
            for key, d in signals.deployments.items():
                self.replicas.setdefault(key, []).append(d.num_ready)
        return out


def peak_replicas(config: FleetConfig, catalog: Catalog) -> dict[str, int]:
    """Replicas each model needs at its peak, at the SLO capacity × target utilisation."""
    policy = SloAutoscaler(config.autoscale, config, catalog)
    out = {}
    for model, (mean, _) in MODELS.items():
        usable = next(s.usable_per_s for s in policy.slots if s.model == model)
        peak = mean * (1 + (PEAK_TO_TROUGH - 1) / (PEAK_TO_TROUGH + 1))
        out[model] = math.ceil(peak / usable)
    return out


def start_replicas(model: str, usable: float) -> int:
    return max(1, math.ceil(diurnal(model, 1.0).rate_at(0.0) / usable))


def run(name: str, hours: float, seed: int, k: float, catalog: Catalog) -> dict[str, Any]:
    spot_fraction = 0.5 if name.endswith("50%") else 1.0
    probe = parse_config(fleet_doc({p: dict.fromkeys(MODELS, 1) for p in PRICES}, 1.0, k))
    peak = peak_replicas(probe, catalog)
    usable = {s.model: s.usable_per_s for s in SloAutoscaler(probe.autoscale, probe, catalog).slots}
    if name == "static-peak":
        start = {
            "l4-spot": {m: peak[m] - peak[m] // 2 for m in MODELS},
            "l4": {m: peak[m] // 2 for m in MODELS},
        }
    else:
        need = {m: start_replicas(m, usable[m]) for m in MODELS}
        keda = name.startswith("threshold")
        start = {"l4-spot": need, "l4": dict.fromkeys(MODELS, 1 if keda else 0)}
    config = parse_config(fleet_doc(start, spot_fraction, k))
    keys = {f"{p}/{m}": m for p in PRICES for m in MODELS}
    inner: AutoscalePolicy | None
    if name == "static-peak":
        inner = None
    elif name.startswith("threshold"):
        in_flight = name == "threshold-inflight"
        inner = ThresholdPolicy(
            keys,
            target_per_replica=16.0 if in_flight else 5.0,
            min_replicas=1,
            interval_s=15.0 / k,
            scale_down_window_s=300.0 / k,
            metric="in-flight" if in_flight else "waiting",
        )
    else:
        inner = SloAutoscaler(config.autoscale, config, catalog)
    recorder = Recorder(inner, RECORD_EVERY_S / k)
    options = SimOptions(
        duration_s=hours * 3600 / k,
        seed=seed,
        max_drain_s=300,
        cold_start=ColdStart(
            provision_s=60.0 / k, download_gb_per_s=k, load_gb_per_s=5.0 * k,
            engine_init_s=30.0 / k,
        ),
        default_spot=SpotPolicy(SPOT_PER_HOUR * k, NOTICE_S, replace=True),
        slo_ttft_s=SLO_TTFT_S,
        slo_itl_s=SLO_ITL_S,
        bucket_s=60.0 / k,
    )  # fmt: skip
    sim = Simulator(config, catalog, options, autoscale=recorder)
    wall = time.perf_counter()
    sim.run(arrivals(seed, k))
    wall = time.perf_counter() - wall
    report = build_report(sim)
    return summarise(name, sim, report, recorder, wall, k)


def summarise(
    name: str,
    sim: Simulator,
    report: dict[str, Any],
    recorder: Recorder,
    wall_s: float,
    k: float,
) -> dict[str, Any]:
    """Figures per real day: GPU-hours and dollars × ``k``; times in real hours."""
    log = sim.log
    arrival = np.frombuffer(log.arrival_s, dtype=np.float64)
    first = np.frombuffer(log.first_token_s, dtype=np.float64)
    finish = np.frombuffer(log.finish_s, dtype=np.float64)
    outcome = np.frombuffer(log.outcome, dtype=np.int8)
    out_tokens = np.frombuffer(log.num_output_tokens, dtype=np.int32).astype(np.float64)
    model_i = np.frombuffer(log.model_index, dtype=np.int32)
    done = outcome == FINISHED
    ttft = np.where(done, first - arrival, 1e9)  # not finished: beyond any target
    with np.errstate(divide="ignore", invalid="ignore"):
        itl = np.where(done & (out_tokens > 1), (finish - first) / (out_tokens - 1), 0.0)
    meets = done & (ttft <= SLO_TTFT_S) & (itl <= SLO_ITL_S)
    misses = {
        "not_finished": int((~done).sum()),
        "ttft": int((done & (ttft > SLO_TTFT_S)).sum()),
        "itl_only": int((done & (ttft <= SLO_TTFT_S) & (itl > SLO_ITL_S)).sum()),
    }
    per_model = {}
    for i, model in enumerate(sim.models):
        mask = model_i == i
        per_model[model] = {
            "requests": int(mask.sum()),
            "slo_attainment": float(meets[mask].mean()) if mask.any() else math.nan,
        }
    bucket = 600.0 / k
    index = (arrival // bucket).astype(np.int64)
    n_buckets = int(sim.options.duration_s // bucket) + 1
    series_ttft_p99 = []
    series_attain = []
    for b in range(n_buckets):
        mask = index == b
        values = ttft[mask]
        series_ttft_p99.append(float(np.percentile(values, 99)) if values.size else math.nan)
        series_attain.append(float(meets[mask].mean()) if mask.any() else math.nan)
    pools = {p["pool"]: p for p in report["pools"]}
    return {
        "policy": name,
        "gpu_hours": k * sum(p["gpu_hours"] for p in pools.values()),
        "cost_usd": k * report["cost"]["total_usd"],
        "slo_attainment": report["slo"]["attainment"],
        "per_model": per_model,
        "misses": misses,
        "pools": {p: {"gpu_hours": k * v["gpu_hours"], "cost_usd": k * v["cost_usd"],
                      "replicas_started": v["replicas_started"]} for p, v in pools.items()},
        "outcomes": report["outcomes"],
        "preemptions": report["preemptions"],
        "ttft_s": {g["model"]: g["ttft_s"] for g in report["latency"]},
        "itl_s": {g["model"]: g["itl_s"] for g in report["latency"]},
        "scale_changes": recorder.changes,
        "wall_s": wall_s,
        "series": {
            "t_s": [t * k for t in recorder.t_s],
            "ready": recorder.replicas,
            "bucket_s": bucket * k,
            "ttft_p99_s": series_ttft_p99,
            "slo_attainment": series_attain,
        },
    }  # fmt: skip


def plot(rows: list[dict[str, Any]], hours: float) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(len(MODELS), 1, figsize=(11, 4 * len(MODELS)), sharex=True)
    for ax, model in zip(np.atleast_1d(axes), MODELS, strict=True):
        t = np.arange(0, hours * 3600, 300.0)
        load = [diurnal(model, 1.0).rate_at(x) for x in t]
        twin = ax.twinx()
        twin.plot(t / 3600, load, color="0.6", lw=1, ls="--", label="offered load (req/s)")
        twin.set_ylabel("req/s")
        for row in rows:
            series = row["series"]
            ts = np.array(series["t_s"]) / 3600
            total = sum(np.array(v) for k, v in series["ready"].items() if k.endswith("/" + model))
            ax.step(ts, total, where="post", label=row["policy"], lw=1.2)
        ax.set_ylabel("ready replicas")
        ax.set_title(model)
        ax.legend(loc="upper left", fontsize=8)
        twin.legend(loc="upper right", fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("hour of day")
    fig.tight_layout()
    path = RESULTS / "autoscale_replicas.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for row in rows:
        series = row["series"]
        tb = np.arange(len(series["ttft_p99_s"])) * series["bucket_s"] / 3600
        ax1.plot(tb, np.minimum(series["ttft_p99_s"], 60), label=row["policy"], lw=1)
        ax2.plot(tb, series["slo_attainment"], label=row["policy"], lw=1)
    ax1.axhline(SLO_TTFT_S, color="k", lw=0.8, ls=":")
    ax1.set_ylabel("TTFT p99 per 10 min (s, capped at 60)")
    ax1.set_yscale("log")
    ax2.set_ylabel("SLO attainment per 10 min")
    ax2.set_xlabel("hour of day")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    path = RESULTS / "autoscale_latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--speedup", type=float, default=SPEEDUP,
        help="run the day this many times faster (control-plane times scaled alike)",
    )  # fmt: skip
    parser.add_argument(
        "--policies",
        default="static-peak,threshold,threshold-inflight,gpufleet,gpufleet-spot≤50%",
    )
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args()
    catalog = Catalog.load()
    rows = []
    for name in args.policies.split(","):
        row = run(name, args.hours, args.seed, args.speedup, catalog)
        rows.append(row)
        print(f"  {name}: {row['wall_s']:.0f} s wall", flush=True)
    static = next((r for r in rows if r["policy"] == "static-peak"), None)
    threshold = next((r for r in rows if r["policy"] == "threshold"), None)
    print(f"\n{'policy':<20} {'GPU-h':>7} {'$':>8} {'vs static':>9} {'SLO':>7} "
          f"{'TTFT p99':>9} {'failed':>6} {'shed':>6} {'changes':>7}")  # fmt: skip
    for row in rows:
        ratio = row["cost_usd"] / static["cost_usd"] if static else math.nan
        p99 = max(v["p99"] for v in row["ttft_s"].values())
        print(
            f"{row['policy']:<20} {row['gpu_hours']:>7.1f} {row['cost_usd']:>8.2f} "
            f"{ratio:>9.1%} {row['slo_attainment']:>7.2%} {p99:>8.2f}s "
            f"{row['outcomes']['failed']:>6} {row['outcomes']['shed']:>6} "
            f"{row['scale_changes']:>7}"
        )
    ours = next((r for r in rows if r["policy"] == "gpufleet"), None)
    verdict: dict[str, Any] = {}
    if ours and static and threshold:
        verdict = {
            "cost_vs_static": ours["cost_usd"] / static["cost_usd"],
            "cost_vs_threshold": ours["cost_usd"] / threshold["cost_usd"],
            "target_met": ours["cost_usd"] <= 0.6 * static["cost_usd"]
            and ours["slo_attainment"] >= 0.99
            and ours["cost_usd"] < threshold["cost_usd"]
            and ours["slo_attainment"] >= threshold["slo_attainment"],
        }
        print(
            f"\ngpufleet: {verdict['cost_vs_static']:.1%} of static-peak cost, "
            f"{verdict['cost_vs_threshold']:.1%} of threshold; target "
            f"{'MET' if verdict['target_met'] else 'NOT MET'}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "hours": args.hours,
        "speedup": args.speedup,
        "seed": args.seed,
        "scenario": {"models": MODELS, "peak_to_trough": PEAK_TO_TROUGH,
                     "spot_interruptions_per_hour": SPOT_PER_HOUR, "notice_s": NOTICE_S,
                     "prices_usd_per_gpu_hour": PRICES, "prompt": PROMPT, "output": OUTPUT,
                     "slo": {"ttft_s": SLO_TTFT_S, "itl_s": SLO_ITL_S}},
        "verdict": verdict,
        "runs": rows,
    }  # fmt: skip
    (RESULTS / "autoscale.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    if not args.no_plots:
        for path in plot(rows, args.hours):
            print(f"wrote {path.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
