"""The minimum-cost GPU mix as a mixed-integer program (HiGHS through ``scipy.optimize.milp``).

Formulation. Options o = (GPU, TP, price row: cloud, region, capacity type).
Variables: ``n[m,o]`` ≥ 0 integer replicas of model m on option o; ``s[m,b,g]``
∈ [0, 1], the share of model m's length bucket b served on configuration
g = (GPU, TP) (only where that configuration fits and meets the SLO for the
bucket, ``cap[m,b,g]`` > 0 requests/s per replica).

    minimise   Σ n[m,o] · tp(o) · price(o)                       ($ per hour)
    subject to Σ_g s[m,b,g] = 1                                  every bucket served
               Σ_b s[m,b,g] · λ[m,b] / cap[m,b,g]
                   ≤ Σ_{o on g} availability(o) · n[m,o]        capacity at the SLO
               Σ_{m, o on GPU type} tp(o) · n[m,o] ≤ max_gpus    per GPU type
               Σ_{o not spot} tp·n ≥ f · Σ_o tp·n  (per model)   min on-demand fraction

Spot capacity counts at its availability (a spot replica is up that fraction
of the time), so lost spot capacity is covered on average by the rest; the
min on-demand fraction is the fallback that never goes away. Heterogeneous
mixes fall out of the bucket shares: short buckets land on cheap GPUs when
they serve them for less. HiGHS reports the optimality gap.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from gpufleet.plan.capacity import Slo, replica_capacity
from gpufleet.plan.catalog import Catalog
from gpufleet.plan.demand import ModelDemand
from gpufleet.plan.prices import GpuPrice


@dataclass(frozen=True)
class Constraints:
    max_gpus: Mapping[str, int] = field(default_factory=dict)
    min_on_demand_fraction: float = 0.0
    tensor_parallel: tuple[int, ...] = (1, 2, 4, 8)
    gpus: tuple[str, ...] = ()
    """Restrict to these GPU types (empty: all priced)."""


@dataclass(frozen=True)
class PlannedPool:
    model: str
    gpu: str
    tp: int
    capacity: str
    cloud: str
    region: str
    replicas: int
    usd_per_gpu_hour: float
    availability: float
    served_requests_per_s: float


@dataclass(frozen=True)
class Plan:
    name: str
    pools: tuple[PlannedPool, ...]
    cost_usd_per_hour: float
    usd_per_million_output_tokens: float
    mip_gap: float

    @property
    def gpu_types(self) -> frozenset[str]:
        return frozenset(p.gpu for p in self.pools)


def capacity_table(
    demands: Sequence[ModelDemand],
    catalog: Catalog,
    gpus: Collection[str],
    slo: Slo,
    tps: Sequence[int],
) -> dict[tuple[int, int, str, int], float]:
    """``cap[(model i, bucket j, gpu, tp)]`` requests/s per replica (fitting, SLO-meeting only)."""
    cap: dict[tuple[int, int, str, int], float] = {}
    for i, d in enumerate(demands):
        spec = catalog.model(d.spec)
        for gpu in gpus:
            gpu_spec = catalog.gpu(gpu)
            for tp in tps:
                for j, b in enumerate(d.buckets):
                    if b.max_total_tokens > d.context_length:
                        continue
                    c = replica_capacity(
                        spec, gpu_spec, tp, b.prompt_tokens, b.output_tokens, slo, d.context_length
                    )
                    if c is not None and c.requests_per_s > 0:
                        cap[(i, j, gpu, tp)] = c.requests_per_s
    return cap


def solve(
    name: str,
    demands: Sequence[ModelDemand],
    prices: Sequence[GpuPrice],
    cap: Mapping[tuple[int, int, str, int], float],
    constraints: Constraints,
    time_limit_s: float = 8.0,
) -> Plan | None:
    """The cheapest plan (module doc); None when infeasible."""
    allowed = set(constraints.gpus)
    rows = [p for p in prices if not allowed or p.gpu in allowed]
    configs = sorted({(g, tp) for (_, _, g, tp) in cap if not allowed or g in allowed})
    usable = {(k[0], k[2], k[3]) for k in cap}
    n_vars = [
        (i, g, tp, r)
        for i in range(len(demands))
        for (g, tp) in configs
        for r in rows
        if r.gpu == g and (i, g, tp) in usable
    ]
    s_vars = [k for k in cap if k[2:] in set(configs)]
    nn, ns = len(n_vars), len(s_vars)
    if not nn:
        return None
    cost = np.zeros(nn + ns)
    for x, (_, _, tp, r) in enumerate(n_vars):
        cost[x] = tp * r.usd_per_gpu_hour
    lo: list[float] = []
    hi: list[float] = []
    rows_a: list[dict[int, float]] = []
    for i, d in enumerate(demands):
        for j in range(len(d.buckets)):
            row = {nn + y: 1.0 for y, k in enumerate(s_vars) if k[0] == i and k[1] == j}
            if not row:
                return None
            rows_a.append(row)
            lo.append(1.0)
            hi.append(1.0)
    for i, d in enumerate(demands):
        for g, tp in configs:
            row = {}
            for y, k in enumerate(s_vars):
                if k[0] == i and k[2] == g and k[3] == tp:
                    row[nn + y] = d.requests_per_s * d.buckets[k[1]].share / cap[k]
            for x, (mi, mg, mtp, r) in enumerate(n_vars):
                if mi == i and mg == g and mtp == tp:
                    row[x] = -r.availability
            if row:
                rows_a.append(row)
                lo.append(-np.inf)
                hi.append(0.0)
    for gpu, limit in constraints.max_gpus.items():
        row = {x: float(tp) for x, (_, g, tp, _) in enumerate(n_vars) if g == gpu}
        if row:
            rows_a.append(row)
            lo.append(-np.inf)
            hi.append(float(limit))
    f = constraints.min_on_demand_fraction
    if f > 0:
        for i in range(len(demands)):
            row = {
                x: tp * ((1.0 if r.capacity != "spot" else 0.0) - f)
                for x, (mi, _, tp, r) in enumerate(n_vars) if mi == i
            }  # fmt: skip
            rows_a.append(row)
            lo.append(0.0)
            hi.append(np.inf)
    a = lil_matrix((len(rows_a), nn + ns))
    for r_index, row in enumerate(rows_a):
        for col, value in row.items():
            a[r_index, col] = value
    integrality = np.concatenate([np.ones(nn), np.zeros(ns)])
    upper = np.concatenate([np.full(nn, np.inf), np.ones(ns)])
    result = milp(
        cost,
        constraints=LinearConstraint(a.tocsr(), np.array(lo), np.array(hi)),
        integrality=integrality,
        bounds=Bounds(np.zeros(nn + ns), upper),
        options={"time_limit": time_limit_s, "mip_rel_gap": 1e-4},
    )
    if result.x is None:
        return None
    x = result.x
    pools = []
    for v, (i, g, tp, r) in enumerate(n_vars):
        count = round(x[v])
        if count <= 0:
            continue
        served = sum(
            x[nn + y] * demands[i].requests_per_s * demands[i].buckets[k[1]].share
            for y, k in enumerate(s_vars) if k[0] == i and k[2] == g and k[3] == tp
        )  # fmt: skip
        pools.append(PlannedPool(demands[i].model, g, tp, r.capacity, r.cloud, r.region, count,
                                 r.usd_per_gpu_hour, r.availability, served))  # fmt: skip
    hourly = float(sum(p.replicas * p.tp * p.usd_per_gpu_hour for p in pools))
    tokens_per_h = sum(d.requests_per_s * d.mean_output_tokens for d in demands) * 3600
    gap = getattr(result, "mip_gap", 0.0)
    return Plan(
        name=name,
        pools=tuple(pools),
        cost_usd_per_hour=hourly,
        usd_per_million_output_tokens=hourly / tokens_per_h * 1e6 if tokens_per_h else 0.0,
        mip_gap=float(gap if gap is not None else 0.0),
    )
