"""The planner's input file: models with traffic, SLO, constraints, price selection.

Format::

    slo: {ttft_s: 2.0, itl_s: 0.1, percentile: 90}
    models:
      - name: llama-3-8b          # served name; spec defaults to it (catalog id)
        rate_per_s: 40
        prompt_tokens: "lognormal:512,1.0,6000"   # length strings, as gpufleet bench
        output_tokens: "uniform:50,300"
        context_length: 8192
    buckets: [0.5, 0.9]           # length-bucket quantiles (Mélange split)
    constraints:
      max_gpus: {h100-sxm: 16}
      min_on_demand_fraction: 0.2
      tensor_parallel: [1, 2, 4, 8]
      gpus: []                    # restrict GPU types (empty: all priced)
    prices: {clouds: [aws], regions: [us-east-1], capacity_types: [on-demand, spot, reserved]}

Lengths are sampled (2,000 draws per model, seeded) to build the buckets.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpufleet.plan.capacity import Slo
from gpufleet.plan.demand import ModelDemand, length_buckets
from gpufleet.plan.optimizer import Constraints
from gpufleet.plan.prices import CAPACITY_TYPES, GpuPrice, PriceTable
from gpufleet.workload.lengths import parse_length


@dataclass(frozen=True)
class PlanInputs:
    demands: tuple[ModelDemand, ...]
    slo: Slo
    constraints: Constraints
    prices: tuple[GpuPrice, ...]


def parse_inputs(doc: Mapping[str, Any], table: PriceTable, seed: int = 0) -> PlanInputs:
    """Build the planner's inputs; ValueError names a bad key."""
    unknown = set(doc) - {"slo", "models", "buckets", "constraints", "prices"}
    if unknown:
        raise ValueError(f"plan input: unknown keys {sorted(unknown)}")
    slo = Slo(**dict(doc.get("slo") or {}))
    quantiles = tuple(float(q) for q in doc.get("buckets", (0.5, 0.9)))
    demands = []
    for entry in doc.get("models") or ():
        rng = random.Random(f"gpufleet-plan/{seed}/{entry['name']}")
        prompt = parse_length(str(entry.get("prompt_tokens", "512")))
        output = parse_length(str(entry.get("output_tokens", "128")))
        samples = [(prompt.sample(rng), output.sample(rng)) for _ in range(2000)]
        demands.append(
            ModelDemand(
                model=str(entry["name"]),
                spec=str(entry.get("spec", entry["name"])),
                requests_per_s=float(entry["rate_per_s"]),
                buckets=length_buckets(samples, quantiles),
                context_length=int(entry.get("context_length", 8192)),
            )
        )
    if not demands:
        raise ValueError("plan input: no models")
    c = dict(doc.get("constraints") or {})
    constraints = Constraints(
        max_gpus={str(k): int(v) for k, v in (c.pop("max_gpus", None) or {}).items()},
        min_on_demand_fraction=float(c.pop("min_on_demand_fraction", 0.0)),
        tensor_parallel=tuple(int(t) for t in c.pop("tensor_parallel", (1, 2, 4, 8))),
        gpus=tuple(str(g) for g in c.pop("gpus", ())),
    )
    if c:
        raise ValueError(f"plan input: unknown constraints {sorted(c)}")
    p = dict(doc.get("prices") or {})
    prices = table.select(
        clouds=tuple(p.get("clouds", ())),
        regions=tuple(p.get("regions", ())),
        capacity_types=tuple(p.get("capacity_types", CAPACITY_TYPES)),
    )
    return PlanInputs(tuple(demands), slo, constraints, tuple(prices))
