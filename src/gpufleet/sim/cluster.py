"""The fleet as the simulator builds it: one deployment per (pool, model), replicas on demand.

Contract: `Deployment.from_config` resolves each pool deployment of a
`FleetConfig` against the `Catalog` — the model's architecture is
``ModelConfig.spec`` (default: its name), the GPU is ``pool.gpu``, TP is
``pool.gpus_per_replica`` — and sizes the engine exactly as a real replica
would be: ``estimate_kv_pool`` with ``max_model_len`` = the model's
``context_length`` capped at its ``max_position_embeddings``, then
``EngineConfig.from_kv_pool`` and a ``RooflineLatency``. A deployment listing
``endpoints`` has one replica per endpoint (the gateway's view of it), else
``replicas``. A deployment that does
not fit raises `FleetError` naming it. ``new_engine()`` makes a fresh engine
(a replica, a replacement after preemption, or a scale-up).
"""

from __future__ import annotations

from dataclasses import dataclass

from gpufleet.config import FleetConfig, PoolConfig
from gpufleet.engine.config import EngineConfig
from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.latency import RooflineLatency, StepShape
from gpufleet.plan.catalog import Catalog
from gpufleet.plan.memory import MemoryAssumptions, estimate_kv_pool
from gpufleet.plan.model_spec import ModelSpec


class FleetError(ValueError):
    """The fleet cannot be simulated as configured (a model that does not fit its pool...)."""


@dataclass(frozen=True)
class Deployment:
    """Replicas of one model in one pool, and how to build their engines."""

    key: str
    model: str
    pool: str
    gpu: str
    gpus_per_replica: int
    capacity: str
    price_usd_per_gpu_hour: float
    replicas: int
    spec: ModelSpec
    engine_config: EngineConfig
    latency: RooflineLatency
    prefill_tokens_per_s: float

    @classmethod
    def from_config(cls, config: FleetConfig, catalog: Catalog) -> list[Deployment]:
        """Every deployment of the fleet, in fleet.yaml order."""
        out: list[Deployment] = []
        for pool in config.pools:
            for deployment in pool.deployments:
                model_config = config.model(deployment.model)
                spec = catalog.model(model_config.spec or model_config.name)
                out.append(
                    _build(
                        pool,
                        deployment.model,
                        len(deployment.endpoints) or deployment.replicas,
                        spec,
                        catalog,
                        min(model_config.context_length, spec.max_position_embeddings),
                    )
                )
        return out

    @property
    def weight_bytes_per_gpu(self) -> int:
        return self.latency.weight_bytes_per_gpu

    def new_engine(self) -> EngineModel:
        """A fresh, empty engine for one replica."""
        return EngineModel(self.engine_config, self.latency)


def _build(
    pool: PoolConfig,
    model: str,
    replicas: int,
    spec: ModelSpec,
    catalog: Catalog,
    max_model_len: int,
) -> Deployment:
    gpu = catalog.gpu(pool.gpu)
    tp = pool.gpus_per_replica
    try:
        estimate = estimate_kv_pool(spec, gpu, tp, MemoryAssumptions(max_model_len=max_model_len))
    except ValueError as exc:
        raise FleetError(f"pool {pool.name!r}: model {model!r}: {exc}") from None
    if not estimate.fits:
        raise FleetError(
            f"pool {pool.name!r}: model {model!r} does not fit {gpu.key} x{tp}: {estimate.reason}"
        )
    latency = RooflineLatency(spec, gpu, tp)
    chunk = estimate.max_num_batched_tokens
    prefill_s = latency.step_time_s(
        StepShape(num_prefill_tokens=chunk, num_attention_pairs=chunk * (chunk + 1) // 2)
    )
    return Deployment(
        key=f"{pool.name}/{model}",
        model=model,
        pool=pool.name,
        gpu=gpu.key,
        gpus_per_replica=tp,
        capacity=pool.capacity,
        price_usd_per_gpu_hour=pool.price_usd_per_gpu_hour,
        replicas=replicas,
        spec=spec,
        engine_config=EngineConfig.from_kv_pool(estimate),
        latency=latency,
        prefill_tokens_per_s=chunk / prefill_s,
    )
