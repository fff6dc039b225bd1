"""Requests per second one replica of a deployment sustains at the SLO.

Contract: `replica_capacities` returns a `ReplicaCapacity` for every
deployment key (``"pool/model"``) of the fleet, from the first source that
knows it:

1. ``autoscale.models[model].capacity_requests_per_s`` (an operator's measured figure);
2. the planner's analytical estimate (`gpufleet.plan.capacity.replica_capacity`,
   headroom 1) for the model's typical prompt/output lengths at its TTFT/ITL
   targets, when a catalog is given and knows the model and GPU — a pool that
   cannot meet the SLO at all gets ``requests_per_s = 0`` (never used for the model);
3. a guess from concurrency: ``target_in_flight_per_replica`` requests of
   ``output_tokens × itl_s`` seconds each (Little's law).

``max_in_flight`` is the concurrency at which a replica runs at that rate (the
planner's batch, else ``target_in_flight_per_replica``); the policy compares
observed in-flight requests to it, which corrects a capacity figure that is
too optimistic for the traffic actually seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpufleet.config import AutoscaleConfig, FleetConfig
from gpufleet.plan.capacity import Slo, replica_capacity
from gpufleet.plan.catalog import Catalog


@dataclass(frozen=True, slots=True)
class ModelTargets:
    """A model's SLO and typical request, after per-model overrides."""

    ttft_s: float
    itl_s: float
    prompt_tokens: int
    output_tokens: int
    idle_to_zero_s: float | None


@dataclass(frozen=True, slots=True)
class ReplicaCapacity:
    """One replica at the SLO: its request rate, the concurrency it runs at, and why."""

    requests_per_s: float
    max_in_flight: float
    source: str


def model_targets(settings: AutoscaleConfig, model: str) -> ModelTargets:
    """The ``autoscale:`` section's figures for ``model``, overrides applied."""
    own = settings.models.get(model)
    return ModelTargets(
        ttft_s=(own.ttft_s if own and own.ttft_s else settings.ttft_s),
        itl_s=(own.itl_s if own and own.itl_s else settings.itl_s),
        prompt_tokens=(own.prompt_tokens if own and own.prompt_tokens else settings.prompt_tokens),
        output_tokens=(own.output_tokens if own and own.output_tokens else settings.output_tokens),
        idle_to_zero_s=(
            own.idle_to_zero_s if own and own.idle_to_zero_s else settings.idle_to_zero_s
        ),
    )


def replica_capacities(
    settings: AutoscaleConfig, fleet: FleetConfig, catalog: Catalog | None = None
) -> dict[str, ReplicaCapacity]:
    """Capacity per deployment key (module doc)."""
    out: dict[str, ReplicaCapacity] = {}
    for pool in fleet.pools:
        for deployment in pool.deployments:
            key = f"{pool.name}/{deployment.model}"
            out[key] = _capacity(settings, fleet, catalog, pool.gpu, pool.gpus_per_replica, key)
    return out


def _capacity(
    settings: AutoscaleConfig,
    fleet: FleetConfig,
    catalog: Catalog | None,
    gpu: str,
    tp: int,
    key: str,
) -> ReplicaCapacity:
    model = key.split("/", 1)[1]
    targets = model_targets(settings, model)
    own = settings.models.get(model)
    if own is not None and own.capacity_requests_per_s:
        concurrency = own.capacity_requests_per_s * targets.output_tokens * targets.itl_s
        return ReplicaCapacity(own.capacity_requests_per_s, concurrency, "configured")
    if catalog is not None:
        model_config = fleet.model(model)
        try:
            spec = catalog.model(model_config.spec or model_config.name)
            gpu_spec = catalog.gpu(gpu)
        except KeyError:
            spec = None
        if spec is not None:
            estimate = replica_capacity(
                spec,
                gpu_spec,
                tp,
                targets.prompt_tokens,
                targets.output_tokens,
                Slo(ttft_s=targets.ttft_s, itl_s=targets.itl_s),
                min(model_config.context_length, spec.max_position_embeddings),
                headroom=1.0,
            )
            if estimate is None:
                return ReplicaCapacity(0.0, 0.0, "cannot meet the SLO")
            return ReplicaCapacity(estimate.requests_per_s, float(estimate.batch), "planner")
    in_flight = settings.target_in_flight_per_replica
    rate = in_flight / (targets.output_tokens * targets.itl_s)
    return ReplicaCapacity(rate, in_flight, "concurrency guess")
