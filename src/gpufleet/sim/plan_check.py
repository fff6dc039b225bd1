"""Simulating a planned fleet on its demand: does it meet the SLO it was planned for?

Contract: `check_plan` parses the plan's fleet.yaml mapping, drives it with a
synthetic workload per model (Poisson at the model's rate; prompt/output
lengths drawn from the model's length buckets in proportion to their shares)
for ``duration_s`` and reports, per model, the TTFT and ITL at the SLO
percentile, the attainment and whether the SLO holds (p-th percentile TTFT ≤
target and ITL ≤ target, and no request shed or failed).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpufleet.config import parse_config
from gpufleet.engine.request import SyntheticPrompt
from gpufleet.plan.capacity import Slo
from gpufleet.plan.catalog import Catalog
from gpufleet.plan.demand import ModelDemand
from gpufleet.sim.arrival import SimArrival
from gpufleet.sim.options import SimOptions
from gpufleet.sim.records import FINISHED
from gpufleet.sim.simulator import Simulator


@dataclass(frozen=True)
class PlanCheck:
    meets_slo: bool
    per_model: Mapping[str, Mapping[str, float]]


def demand_arrivals(demands: Sequence[ModelDemand], seed: int) -> Iterator[SimArrival]:
    """Merged Poisson streams, one per model, lengths ~ uniform ±50% around bucket means;
    each prompt its own segment (no shared prefix, promised: private KV blocks)."""
    rng = random.Random(f"gpufleet-plan-check/{seed}")
    total = sum(d.requests_per_s for d in demands)
    now, index = 0.0, 0
    weights = [d.requests_per_s for d in demands]
    while True:
        now += rng.expovariate(total)
        d = rng.choices(demands, weights)[0]
        b = rng.choices(d.buckets, [x.share for x in d.buckets])[0]
        prompt = max(1, int(b.prompt_tokens * rng.uniform(0.5, 1.5)))
        output = max(1, int(b.output_tokens * rng.uniform(0.5, 1.5)))
        prompt = min(prompt, d.context_length - output - 1)
        yield SimArrival(
            index,
            now,
            d.model,
            SyntheticPrompt(((seed * 1_000_003 + index, prompt),), unique_from=0),
            output,
        )
        index += 1


def check_plan(
    fleet: Mapping[str, Any],
    demands: Sequence[ModelDemand],
    slo: Slo,
    catalog: Catalog,
    duration_s: float = 120.0,
    seed: int = 0,
) -> PlanCheck:
    """Simulate the plan (module doc)."""
    sim = Simulator(
        parse_config(dict(fleet)),
        catalog,
        SimOptions(duration_s=duration_s, seed=seed, max_drain_s=120.0),
    )
    sim.run(demand_arrivals(demands, seed))
    log = sim.log
    outcome = np.frombuffer(log.outcome, dtype=np.int8)
    model_i = np.frombuffer(log.model_index, dtype=np.int32)
    arrival = np.frombuffer(log.arrival_s, dtype=np.float64)
    first = np.frombuffer(log.first_token_s, dtype=np.float64)
    finish = np.frombuffer(log.finish_s, dtype=np.float64)
    out = np.frombuffer(log.num_output_tokens, dtype=np.int32).astype(np.float64)
    per_model: dict[str, dict[str, float]] = {}
    ok = True
    for i, name in enumerate(sim.models):
        mask = model_i == i
        done = mask & (outcome == FINISHED)
        ttft = (first - arrival)[done]
        multi = done & (out > 1)
        itl = ((finish - first)[multi] / (out[multi] - 1)) if multi.any() else np.zeros(1)
        ttft_p = float(np.percentile(ttft, slo.percentile)) if ttft.size else float("inf")
        itl_p = float(np.percentile(itl, slo.percentile))
        lost = int(mask.sum() - done.sum())
        meets = ttft_p <= slo.ttft_s and itl_p <= slo.itl_s and lost == 0
        ok = ok and meets
        per_model[name] = {
            "ttft_s": ttft_p,
            "itl_s": itl_p,
            "lost": lost,
            "requests": int(mask.sum()),
        }
    return PlanCheck(ok, per_model)
