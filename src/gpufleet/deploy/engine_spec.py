"""Everything the renderers need to know about one (model, pool) engine workload.

Contract: ``engine_spec`` is a pure function of the fleet config, the catalogs and the
layout; the Kubernetes builders (`gpufleet.deploy.engine_objects`) and the Helm values
(`gpufleet.deploy.helm`) both read only this spec, so the two targets cannot disagree
about a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gpufleet.backends.discovery_labels import (
    ENGINE_NAME,
    GPU_LABEL,
    MODEL_LABEL,
    NAME_LABEL,
    POOL_LABEL,
    label_value,
)
from gpufleet.config import DeploymentConfig, FleetConfig, ModelConfig, PoolConfig
from gpufleet.deploy.layout import EngineLayout
from gpufleet.deploy.settings import ModelDeployConfig
from gpufleet.errors import ConfigError
from gpufleet.plan.catalog import Catalog

MODELS_MOUNT = "/models"
HF_HOME = "/models/.hf"
MAX_ENGINE_NAME = 52
"""LeaderWorkerSet names StatefulSets after the group; their revision-hash labels need
room for 11 more characters within 63."""
PROBE_PERIOD_S = 10
GPU_TYPE_NODE_LABEL = "gpufleet.io/gpu-type"
CAPACITY_NODE_LABEL = "gpufleet.io/capacity"
POOL_NODE_LABEL = "gpufleet.io/pool"


@dataclass(frozen=True)
class WeightsSpec:
    uri: str
    sha256: str
    """Expected digest, '' when not configured (the download is then only recorded)."""
    dir: str
    """Where the engine reads them: ``/models/<model label>``."""


@dataclass(frozen=True)
class EngineSpec:
    name: str
    model: str
    pool: str
    labels: Mapping[str, str]
    selector: Mapping[str, str]
    replicas: int
    max_replicas: int
    tp: int
    pp: int
    num_nodes: int
    gpus_per_pod: int
    image: str
    args: tuple[str, ...]
    """vLLM's arguments after ``vllm serve`` (model first)."""
    cpu: str
    memory: str
    shm_size: str
    startup_failure_threshold: int
    termination_grace_s: int
    drain_timeout_s: int
    weights: WeightsSpec | None
    gpu_type: str
    capacity: str
    pool_label: str
    queue_query: str
    """PromQL: this pool's share of the model's queue at the gateways plus the requests in
    flight to this pool."""


def engine_spec(
    config: FleetConfig,
    pool: PoolConfig,
    deployment: DeploymentConfig,
    layout: EngineLayout,
    catalog: Catalog,
    num_pools_serving: int = 1,
) -> EngineSpec:
    """The spec of ``deployment`` in ``pool`` laid out as ``layout``; the model's queue at
    the gateway is shared evenly between the ``num_pools_serving`` pools that serve it."""
    deploy = config.deploy
    model = config.model(deployment.model)
    model_deploy = deploy.models.get(model.name, ModelDeployConfig())
    model_label = label_value(model.name)
    pool_label = label_value(pool.name)
    name = label_value(f"{ENGINE_NAME}-{model.name}-{pool.name}", MAX_ENGINE_NAME)
    weights = None
    if model_deploy.weights_uri is not None:
        weights = WeightsSpec(
            uri=model_deploy.weights_uri,
            sha256=model_deploy.weights_sha256 or "",
            dir=f"{MODELS_MOUNT}/{model_label}",
        )
    selector = {NAME_LABEL: ENGINE_NAME, "app.kubernetes.io/instance": name}
    labels = {
        **selector,
        "app.kubernetes.io/component": "engine",
        "app.kubernetes.io/part-of": "gpufleet",
        MODEL_LABEL: model_label,
        POOL_LABEL: pool_label,
        GPU_LABEL: label_value(pool.gpu),
    }
    gpus = layout.gpus_per_pod
    engine = deploy.engine
    shm_gib = math.ceil(engine.shm_gib_per_gpu * gpus)
    factor = deploy.autoscaling.max_replicas_factor
    return EngineSpec(
        name=name,
        model=model.name,
        pool=pool.name,
        labels=MappingProxyType(labels),
        selector=MappingProxyType(selector),
        replicas=deployment.replicas,
        max_replicas=max(1, math.ceil(deployment.replicas * factor)),
        tp=layout.tp,
        pp=layout.pp,
        num_nodes=layout.num_nodes,
        gpus_per_pod=gpus,
        image=engine.image,
        args=vllm_args(config, model, model_deploy, layout, weights, catalog),
        cpu=_quantity(layout.cpu_per_gpu * gpus),
        memory=f"{math.floor(layout.memory_gib_per_gpu * gpus) + shm_gib}Gi",
        shm_size=f"{shm_gib}Gi",
        startup_failure_threshold=math.ceil(layout.startup_budget_s / PROBE_PERIOD_S),
        termination_grace_s=math.ceil(engine.drain_timeout_s) + 30,
        drain_timeout_s=math.ceil(engine.drain_timeout_s),
        weights=weights,
        gpu_type=label_value(layout.gpu_key),
        capacity=pool.capacity,
        pool_label=pool_label,
        queue_query=_queue_query(model.name, pool.name, num_pools_serving),
    )


def vllm_args(
    config: FleetConfig,
    model: ModelConfig,
    model_deploy: ModelDeployConfig,
    layout: EngineLayout,
    weights: WeightsSpec | None,
    catalog: Catalog,
) -> tuple[str, ...]:
    """``vllm serve`` arguments: served names, parallelism, context, memory, caching, LoRA."""
    engine = config.deploy.engine
    source = weights.dir if weights is not None else _hf_repo(model, model_deploy, catalog)
    args = [source, "--host", "0.0.0.0", "--port", str(engine.port)]
    args += ["--served-model-name", model.name, *model.aliases]
    args += ["--tensor-parallel-size", str(layout.tp)]
    if layout.pp > 1:
        args += ["--pipeline-parallel-size", str(layout.pp)]
    if layout.multi_node:
        args += ["--distributed-executor-backend", "ray"]
    args += ["--max-model-len", str(model.context_length)]
    args += ["--gpu-memory-utilization", repr(engine.gpu_memory_utilization)]
    prefix = (
        "--enable-prefix-caching" if engine.enable_prefix_caching else "--no-enable-prefix-caching"
    )
    args.append(prefix)
    if model.lora_adapters:
        args += [
            "--enable-lora",
            "--max-loras",
            str(min(engine.max_loras, len(model.lora_adapters))),
        ]
        args.append("--lora-modules")
        for adapter in model.lora_adapters:
            args.append(f"{adapter}={_lora_source(adapter, model_deploy, weights)}")
    args += engine.extra_args
    quoted = [arg for arg in args if "'" in arg]
    if quoted:
        raise ConfigError(f"deploy: vLLM argument {quoted[0]!r} contains a single quote")
    return tuple(args)


def _hf_repo(model: ModelConfig, model_deploy: ModelDeployConfig, catalog: Catalog) -> str:
    if model_deploy.hf_repo:
        return model_deploy.hf_repo
    try:
        hf_ids = catalog.model(model.spec or model.name).hf_ids
    except KeyError:
        hf_ids = ()
    return hf_ids[0] if hf_ids else model.name


def _lora_source(adapter: str, model_deploy: ModelDeployConfig, weights: WeightsSpec | None) -> str:
    configured = model_deploy.lora_sources.get(adapter)
    if configured:
        return configured
    return f"{weights.dir}/loras/{adapter}" if weights is not None else adapter


def _queue_query(model: str, pool: str, num_pools: int) -> str:
    queued = f'sum(gpufleet_queue_depth{{model="{model}"}})'
    if num_pools > 1:
        queued = f"{queued} / {num_pools}"
    in_flight = f'sum(gpufleet_requests_in_flight{{model="{model}",pool="{pool}"}})'
    return f"({queued} or vector(0)) + ({in_flight} or vector(0))"


def _quantity(cpus: float) -> str:
    """A CPU quantity: whole cores as an integer string, else millicores."""
    millis = math.floor(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
