"""The simulation report: latency percentiles, SLO attainment, throughput and cost.

Contract: `build_report(sim)` reads a finished `Simulator` and returns a
JSON-ready dict (no prompt text). Definitions:

- TTFT = first token − arrival (queue wait included); E2E = finish − arrival;
  ITL (per request) = (finish − first token) / (output tokens − 1), requests
  with one output token excluded; queue wait = first dispatch − arrival.
- A request meets its SLO when it finished with TTFT ≤ its target (the
  ``slo_ttft_s`` option, else its class's ``ttft_target_s``, else 2 s) and ITL
  ≤ ``slo_itl_s``. Attainment = meeting / all requests (shed and failed ones
  count as misses); goodput = meeting requests per second of ``duration_s``.
- GPU-hours per replica run from provisioning (cold start billed) to stop or
  the end of the run; cost = Σ GPU-hours × the pool's price per GPU-hour;
  $/Mtok divides it by output tokens (and by all tokens) in millions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gpufleet.sim.records import FAILED, FINISHED, SHED

if TYPE_CHECKING:
    from gpufleet.sim.simulator import Simulator

PERCENTILES = (50, 90, 99)
FloatArray = npt.NDArray[np.float64]


def summary(values: FloatArray) -> dict[str, float]:
    """Count, mean and p50/p90/p99 of the finite values (NaN when none)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"count": 0, "mean": float("nan"), **{f"p{p}": float("nan") for p in PERCENTILES}}
    out = {"count": int(finite.size), "mean": float(finite.mean())}
    for p, v in zip(PERCENTILES, np.percentile(finite, PERCENTILES), strict=True):
        out[f"p{p}"] = float(v)
    return out


def build_report(sim: Simulator) -> dict[str, Any]:
    """The report of a finished run (module doc)."""
    log, options = sim.log, sim.options
    arrival = np.frombuffer(log.arrival_s, dtype=np.float64)
    dispatch = np.frombuffer(log.dispatch_s, dtype=np.float64)
    first = np.frombuffer(log.first_token_s, dtype=np.float64)
    finish = np.frombuffer(log.finish_s, dtype=np.float64)
    outcome = np.frombuffer(log.outcome, dtype=np.int8)
    out_tokens = np.frombuffer(log.num_output_tokens, dtype=np.int32).astype(np.float64)
    prompt_tokens = np.frombuffer(log.num_prompt_tokens, dtype=np.int32).astype(np.float64)
    model_i = np.frombuffer(log.model_index, dtype=np.int32)
    class_i = np.frombuffer(log.class_index, dtype=np.int32)
    done = outcome == FINISHED
    ttft = np.where(done, first - arrival, np.nan)
    e2e = np.where(done, finish - arrival, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        itl = np.where(done & (out_tokens > 1), (finish - first) / (out_tokens - 1), np.nan)
    wait = dispatch - arrival
    targets = np.full(arrival.shape, 2.0)
    for i, name in enumerate(sim.classes):
        c = sim.config.admission.classes[name]
        targets[class_i == i] = options.slo_ttft_s or c.ttft_target_s or 2.0
    if options.slo_ttft_s:
        targets[:] = options.slo_ttft_s
    itl_ok = np.where(np.isnan(itl), True, itl <= options.slo_itl_s)
    meets = done & (ttft <= targets) & itl_ok
    n = int(arrival.size)
    duration = options.duration_s
    groups = []
    for mi, model in enumerate(sim.models):
        for ci, cls in enumerate(sim.classes):
            mask = (model_i == mi) & (class_i == ci)
            if not mask.any():
                continue
            groups.append({
                "model": model,
                "class": cls,
                "requests": int(mask.sum()),
                "finished": int((mask & done).sum()),
                "ttft_s": summary(ttft[mask]),
                "itl_s": summary(itl[mask]),
                "e2e_s": summary(e2e[mask]),
                "queue_wait_s": summary(wait[mask]),
                "slo_attainment": float(meets[mask].mean()),
            })  # fmt: skip
    end = sim.end_s
    pools: dict[str, dict[str, Any]] = {}
    for d in sim.deployments:
        pools.setdefault(d.pool, {
            "pool": d.pool, "gpu": d.gpu, "capacity": d.capacity,
            "price_usd_per_gpu_hour": d.price_usd_per_gpu_hour,
            "gpu_hours": 0.0, "cost_usd": 0.0, "replicas_started": 0, "requests": 0,
        })  # fmt: skip
    per_replica = np.bincount(
        np.frombuffer(log.replica_index, dtype=np.int32)[done], minlength=len(sim.replicas)
    )
    replicas = []
    for r in sim.replicas:
        entry = pools[r.pool]
        hours = r.gpu_hours(end)
        entry["gpu_hours"] += hours
        entry["cost_usd"] += hours * (r.price_usd_per_hour / r.gpus)
        entry["replicas_started"] += 1
        entry["requests"] += int(per_replica[r.index])
        stats = r.engine.stats
        replicas.append({
            "id": r.id, "pool": r.pool, "model": r.model, "requests": int(per_replica[r.index]),
            "gpu_hours": hours, "engine_preemptions": stats.num_preemptions,
            "steps": stats.num_steps,
        })  # fmt: skip
    total_usd = sum(p["cost_usd"] for p in pools.values())
    total_out = float(out_tokens[done].sum())
    total_tokens = total_out + float(prompt_tokens[done].sum())
    causes: dict[str, int] = {}
    for code in np.unique(np.frombuffer(log.cause, dtype=np.int8)):
        if code:
            causes[log.causes[int(code)]] = int(
                (np.frombuffer(log.cause, dtype=np.int8) == code).sum()
            )
    return {
        "duration_s": duration,
        "end_s": end,
        "requests": n,
        "outcomes": {
            "finished": int(done.sum()),
            "shed": int((outcome == SHED).sum()),
            "failed": int((outcome == FAILED).sum()),
            "causes": causes,
        },
        "throughput": {
            "requests_per_s": float(done.sum()) / duration,
            "output_tokens_per_s": total_out / duration,
        },
        "slo": {
            "ttft_s": options.slo_ttft_s,
            "itl_s": options.slo_itl_s,
            "attainment": float(meets.mean()) if n else float("nan"),
            "goodput_requests_per_s": float(meets.sum()) / duration,
        },
        "latency": groups,
        "queue_wait_s": summary(wait),
        "pools": list(pools.values()),
        "cost": {
            "total_usd": total_usd,
            "usd_per_million_output_tokens": total_usd / total_out * 1e6 if total_out else None,
            "usd_per_million_tokens": total_usd / total_tokens * 1e6 if total_tokens else None,
        },
        "preemptions": {
            "spot_interruptions": sim.num_spot_interruptions,
            "spot_failed_requests": causes.get("spot-preemption", 0),
            "retried_requests": int((np.frombuffer(log.num_retries, dtype=np.int32) > 0).sum()),
            "engine_kv_preemptions": sum(r["engine_preemptions"] for r in replicas),
        },
        "replicas": replicas,
        "timeline": {
            "bucket_s": sim.timeline.bucket_s,
            "t_s": sim.timeline.t_s,
            "arrivals": sim.timeline.arrivals,
            "in_flight": sim.timeline.in_flight,
            "queued": sim.timeline.queued,
            "ready": sim.timeline.ready,
        },
        "events": sim.loop.num_events,
    }
