"""The planner: capacities, the MILP, a ranked list of plans, and a plan as a fleet.yaml.

Contract: `rank_plans` computes the capacity table once (`capacity_table`),
solves the heterogeneous program (every priced GPU type allowed) and one
single-GPU-type program per type, and returns the feasible plans cheapest
first (the heterogeneous optimum is never worse than a single-type plan, up to
the solver's gap). `fleet_document` turns a plan into a fleet.yaml mapping that
`gpufleet.config.parse_config` accepts: one pool per (GPU, TP, capacity type,
region), one deployment per model; reserved capacity is written as
``on-demand`` with a ``capacity-type: reserved`` label (fleet.yaml knows only
on-demand and spot). The caller simulates plans in rank order and presents a
plan as meeting its SLO only when the simulation says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from gpufleet.plan.capacity import Slo
from gpufleet.plan.catalog import Catalog
from gpufleet.plan.demand import ModelDemand
from gpufleet.plan.optimizer import Constraints, Plan, capacity_table, solve
from gpufleet.plan.prices import GpuPrice


@dataclass(frozen=True)
class PlanSet:
    plans: tuple[Plan, ...]
    num_variables_hint: int


def rank_plans(
    demands: Sequence[ModelDemand],
    catalog: Catalog,
    prices: Sequence[GpuPrice],
    slo: Slo,
    constraints: Constraints | None = None,
) -> PlanSet:
    """Heterogeneous and single-GPU-type plans, cheapest first (module doc)."""
    constraints = Constraints() if constraints is None else constraints
    gpus = sorted({p.gpu for p in prices if not constraints.gpus or p.gpu in constraints.gpus})
    cap = capacity_table(demands, catalog, gpus, slo, constraints.tensor_parallel)
    plans: list[Plan] = []
    best = solve("heterogeneous", demands, prices, cap, constraints)
    if best is not None:
        plans.append(best)
    for gpu in gpus:
        single = solve(f"only-{gpu}", demands, prices, cap, replace(constraints, gpus=(gpu,)))
        if single is not None:
            plans.append(single)
    plans.sort(key=lambda p: (p.cost_usd_per_hour, p.name != "heterogeneous"))
    return PlanSet(tuple(plans), len(cap))


def best_single_type(plans: Sequence[Plan]) -> Plan | None:
    singles = [p for p in plans if p.name.startswith("only-")]
    return min(singles, key=lambda p: p.cost_usd_per_hour) if singles else None


def fleet_document(
    plan: Plan, demands: Sequence[ModelDemand], profile: str = "least-load"
) -> dict[str, Any]:
    """The plan as a fleet.yaml mapping (module doc)."""
    pools: dict[str, dict[str, Any]] = {}
    for p in plan.pools:
        capacity = "spot" if p.capacity == "spot" else "on-demand"
        name = _name(f"{p.gpu}-tp{p.tp}-{p.capacity}-{p.region}")
        pool = pools.setdefault(name, {
            "name": name, "gpu": p.gpu, "gpus_per_replica": p.tp, "capacity": capacity,
            "price_usd_per_gpu_hour": p.usd_per_gpu_hour,
            "labels": {"cloud": p.cloud, "region": p.region, "capacity-type": p.capacity},
            "deployments": [],
        })  # fmt: skip
        pool["deployments"].append({"model": p.model, "replicas": p.replicas})
    return {
        "models": [
            {"name": d.model, "context_length": d.context_length, "spec": d.spec} for d in demands
        ],
        "pools": list(pools.values()),
        "routing": {"profile": profile},
    }


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)
