"""How one (model, pool) deployment is laid out on GPU nodes.

Algorithm:

1. The tensor-parallel degree is the pool's ``gpus_per_replica``; it must fit one node
   (``gpus_per_node``: ``deploy.engine.gpus_per_node``, else the largest AWS instance of
   the GPU type in ``instances.yaml``, else 8).
2. Pipeline stages ``pp`` = the fewest (1, 2, 3, …) with which the model fits: vLLM's
   KV-pool estimate (`gpufleet.plan.memory.estimate_kv_pool`) at that TP, with the
   weights and KV bytes per token of one stage (``1/pp`` of the layers) and
   ``max_model_len`` = the model's ``context_length``, leaves room for one full-length
   sequence. Models or GPUs missing from the catalog are assumed to fit (``pp = 1``).
3. A replica of ``tp × pp`` GPUs that fits one node is one pod (a Deployment). A larger
   one spans ``ceil(pp / (gpus_per_node / tp))`` whole nodes as a LeaderWorkerSet group,
   one pod of ``gpus_per_node`` GPUs per node, ``pp`` rounded up to fill the nodes.
4. The start-up probe budget is ``startup_base_s`` plus the time to read the pod's share
   of the weights at ``weight_load_gb_per_s``, capped at ``startup_max_s`` (the cap is
   the budget for models not in the catalog).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gpufleet.config import ModelConfig, PoolConfig
from gpufleet.deploy.instances import InstanceCatalog, InstanceType
from gpufleet.deploy.settings import EngineDeployConfig
from gpufleet.errors import ConfigError
from gpufleet.plan.catalog import Catalog
from gpufleet.plan.gpu_spec import GIB, GpuSpec
from gpufleet.plan.memory import MemoryAssumptions, estimate_kv_pool
from gpufleet.plan.model_spec import ModelSpec

MAX_PIPELINE_STAGES = 64
DEFAULT_GPUS_PER_NODE = 8
DEFAULT_CPU_PER_GPU = 4.0
DEFAULT_MEMORY_GIB_PER_GPU = 24.0
NODE_SHARE = 0.75
"""Fraction of a node's vCPUs and memory the engine pods may request (the rest is for
the kubelet, system and GPU-operator DaemonSets)."""


@dataclass(frozen=True)
class EngineLayout:
    gpu_key: str
    """The pool's GPU as a catalog id when the catalog knows it, else as configured."""
    tp: int
    pp: int
    num_nodes: int
    """1: one pod per replica (Deployment); more: a LeaderWorkerSet group of this size."""
    gpus_per_pod: int
    instance: InstanceType | None
    weight_bytes: int | None
    """All weights of the model (None when the catalog does not know it)."""
    startup_budget_s: int
    cpu_per_gpu: float
    memory_gib_per_gpu: float

    @property
    def multi_node(self) -> bool:
        return self.num_nodes > 1


def engine_layout(
    model: ModelConfig,
    pool: PoolConfig,
    engine: EngineDeployConfig,
    catalog: Catalog,
    instances: InstanceCatalog,
) -> EngineLayout:
    """Lay out ``model`` on ``pool`` (see the module doc); ConfigError when impossible."""
    where = f"pools[{pool.name}] model {model.name!r}"
    gpu = _lookup_gpu(catalog, pool.gpu)
    gpu_key = gpu.key if gpu is not None else pool.gpu
    spec = _lookup_model(catalog, model.spec or model.name)
    gpus_per_node = (
        engine.gpus_per_node or instances.max_gpus_per_node(gpu_key) or DEFAULT_GPUS_PER_NODE
    )
    tp = pool.gpus_per_replica
    if tp > gpus_per_node:
        raise ConfigError(
            f"{where}: gpus_per_replica {tp} (tensor parallelism) exceeds the {gpus_per_node} "
            f"GPUs of one {gpu_key} node; use at most {gpus_per_node}"
        )
    pp = 1 if spec is None or gpu is None else _pipeline_stages(spec, gpu, tp, model, engine)
    if tp * pp <= gpus_per_node:
        num_nodes, gpus_per_pod = 1, tp * pp
    else:
        if gpus_per_node % tp:
            raise ConfigError(
                f"{where}: needs {pp} pipeline stages across nodes, but gpus_per_replica {tp} "
                f"does not divide the {gpus_per_node} GPUs of a node"
            )
        stages_per_node = gpus_per_node // tp
        num_nodes = math.ceil(pp / stages_per_node)
        pp, gpus_per_pod = num_nodes * stages_per_node, gpus_per_node
    instance = instances.for_pod(gpu_key, gpus_per_pod)
    weight_bytes = spec.weight_bytes() if spec is not None else None
    return EngineLayout(
        gpu_key=gpu_key,
        tp=tp,
        pp=pp,
        num_nodes=num_nodes,
        gpus_per_pod=gpus_per_pod,
        instance=instance,
        weight_bytes=weight_bytes,
        startup_budget_s=_startup_budget_s(weight_bytes, num_nodes, engine),
        cpu_per_gpu=engine.cpu_per_gpu or _share(instance, "cpu"),
        memory_gib_per_gpu=engine.memory_gib_per_gpu or _share(instance, "memory"),
    )


def _pipeline_stages(
    spec: ModelSpec, gpu: GpuSpec, tp: int, model: ModelConfig, engine: EngineDeployConfig
) -> int:
    try:
        weights_per_gpu = spec.weight_bytes_per_gpu(tp)
        kv_per_token = spec.kv_bytes_per_token_per_gpu(tp)
    except ValueError as exc:
        raise ConfigError(f"pools: model {model.name!r}: {exc}") from None
    for pp in range(1, MAX_PIPELINE_STAGES + 1):
        stage_layers = math.ceil(spec.num_hidden_layers / pp)
        assume = MemoryAssumptions(
            gpu_memory_utilization=engine.gpu_memory_utilization,
            max_model_len=model.context_length,
            weights_gib=weights_per_gpu / pp / GIB,
            kv_bytes_per_token=math.ceil(kv_per_token * stage_layers / spec.num_hidden_layers),
        )
        if estimate_kv_pool(spec, gpu, tp, assume).fits:
            return pp
    raise ConfigError(
        f"model {model.name!r} does not fit {MAX_PIPELINE_STAGES} pipeline stages of "
        f"{tp} × {gpu.key}"
    )


def _startup_budget_s(weight_bytes: int | None, num_nodes: int, engine: EngineDeployConfig) -> int:
    if weight_bytes is None:
        return math.ceil(engine.startup_max_s)
    load_s = weight_bytes / num_nodes / 1e9 / engine.weight_load_gb_per_s
    return math.ceil(min(engine.startup_base_s + load_s, engine.startup_max_s))


def _share(instance: InstanceType | None, what: str) -> float:
    if instance is None:
        return DEFAULT_CPU_PER_GPU if what == "cpu" else DEFAULT_MEMORY_GIB_PER_GPU
    total = instance.vcpus if what == "cpu" else instance.memory_gib
    return float(math.floor(NODE_SHARE * total / instance.gpus))


def _lookup_gpu(catalog: Catalog, name: str) -> GpuSpec | None:
    try:
        return catalog.gpu(name)
    except KeyError:
        return None


def _lookup_model(catalog: Catalog, name: str) -> ModelSpec | None:
    try:
        return catalog.model(name)
    except KeyError:
        return None
