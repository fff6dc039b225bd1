"""The whole rendered fleet as plain values: the gateway, every engine workload, pools.

Contract: ``fleet_spec(config)`` is pure and deterministic (ordered as fleet.yaml is);
it raises ConfigError naming the key path when the ``deploy:`` section or a pool
cannot be rendered. Every target renders from a ``FleetSpec``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import TypeAdapter

from gpufleet.backends.discovery_labels import (
    ENGINE_NAME,
    NAME_LABEL,
    POOL_LABEL,
    label_value,
)
from gpufleet.config import FleetConfig, PoolConfig
from gpufleet.deploy.engine_spec import EngineSpec, engine_spec
from gpufleet.deploy.instances import InstanceCatalog, InstanceType
from gpufleet.deploy.layout import EngineLayout, engine_layout
from gpufleet.deploy.settings import DeployConfig
from gpufleet.errors import ConfigError
from gpufleet.plan.catalog import Catalog

GATEWAY_NAME = "gpufleet-gateway"
GATEWAY_CONFIG_PATH = "/etc/gpufleet/fleet.yaml"
HELM_NAMESPACE = "{{ .Release.Namespace }}"
_NAMESPACE_TOKEN = "__gpufleet_namespace__"


@dataclass(frozen=True)
class PoolSpec:
    """One GPU pool as node capacity (Terraform node groups)."""

    name: str
    label: str
    gpu_type: str
    capacity: str
    instance: InstanceType | None
    instance_types: tuple[InstanceType, ...]
    min_nodes: int
    max_nodes: int
    weight_bytes: int
    """Weights of every model the pool serves (sizes the node-local cache)."""
    price_usd_per_gpu_hour: float
    gpus_per_replica: int


@dataclass(frozen=True)
class FetchSpec:
    """One model's weights to fetch into a node's cache (an init container)."""

    name: str
    uri: str
    sha256: str
    dir: str


@dataclass(frozen=True)
class PrewarmSpec:
    """A DaemonSet filling the cache of every node of a pool (``weights.prewarm``)."""

    name: str
    pool_label: str
    gpu_type: str
    capacity: str
    fetches: tuple[FetchSpec, ...]


@dataclass(frozen=True)
class GatewaySpec:
    name: str
    image: str
    replicas: int
    max_replicas: int
    port: int
    fleet_yaml: str
    """fleet.yaml as the gateway reads it in the cluster (discovery for every pool)."""
    config_sha256: str


@dataclass(frozen=True)
class FleetSpec:
    config: FleetConfig
    namespace: str
    gateway: GatewaySpec
    engines: tuple[EngineSpec, ...]
    pools: tuple[PoolSpec, ...]
    prewarm: tuple[PrewarmSpec, ...]

    @property
    def deploy(self) -> DeployConfig:
        return self.config.deploy


def fleet_spec(
    config: FleetConfig, catalog: Catalog | None = None, instances: InstanceCatalog | None = None
) -> FleetSpec:
    """Lay out every deployment of ``config`` and describe the objects to render."""
    catalog = catalog or Catalog.load()
    instances = instances or InstanceCatalog.load()
    _check_deploy_models(config)
    serving = _pools_serving(config)
    engines: list[EngineSpec] = []
    pools: list[PoolSpec] = []
    for pool in config.pools:
        layouts = []
        for deployment in pool.deployments:
            if deployment.endpoints:
                continue
            model = config.model(deployment.model)
            layout = engine_layout(model, pool, config.deploy.engine, catalog, instances)
            spec = engine_spec(config, pool, deployment, layout, catalog, serving[model.name])
            layouts.append((layout, spec))
            engines.append(spec)
        if layouts:
            pools.append(_pool_spec(pool, layouts, instances))
    names = [e.name for e in engines]
    if len(set(names)) != len(names):
        raise ConfigError("pools: two deployments render to the same engine name")
    fleet_yaml = gateway_fleet_yaml(config, config.deploy.namespace)
    gateway = GatewaySpec(
        name=GATEWAY_NAME,
        image=config.deploy.gateway.image,
        replicas=config.deploy.gateway.replicas,
        max_replicas=max(config.deploy.gateway.max_replicas, config.deploy.gateway.replicas),
        port=config.gateway.port,
        fleet_yaml=fleet_yaml,
        config_sha256=hashlib.sha256(fleet_yaml.encode()).hexdigest(),
    )
    prewarm = _prewarm_specs(config, engines, pools)
    return FleetSpec(
        config, config.deploy.namespace, gateway, tuple(engines), tuple(pools), prewarm
    )


def _prewarm_specs(
    config: FleetConfig, engines: list[EngineSpec], pools: list[PoolSpec]
) -> tuple[PrewarmSpec, ...]:
    if not config.deploy.weights.prewarm:
        return ()
    out = []
    for pool in pools:
        fetches: dict[str, FetchSpec] = {}
        for engine in engines:
            weights = engine.weights
            if engine.pool != pool.name or weights is None or weights.dir in fetches:
                continue
            name = label_value(f"fetch-{weights.dir.rsplit('/', 1)[-1]}")
            fetches[weights.dir] = FetchSpec(name, weights.uri, weights.sha256, weights.dir)
        if fetches:
            out.append(
                PrewarmSpec(
                    name=label_value(f"gpufleet-prewarm-{pool.name}"),
                    pool_label=pool.label,
                    gpu_type=pool.gpu_type,
                    capacity=pool.capacity,
                    fetches=tuple(fetches.values()),
                )
            )
    return tuple(out)


def gateway_fleet_yaml(config: FleetConfig, namespace: str) -> str:
    """fleet.yaml for the in-cluster gateway: listens on all interfaces, discovers the
    rendered engines of every pool through EndpointSlices in ``namespace`` (pools that
    name their own discovery keep it), and drops the ``deploy`` section it does not use.
    ``namespace`` is written as a quoted string, so it may be a Helm expression
    (`HELM_NAMESPACE`) that renders to the same text."""
    data: dict[str, Any] = TypeAdapter(FleetConfig).dump_python(config, mode="json")
    data.pop("deploy", None)
    data["gateway"]["host"] = "0.0.0.0"
    rendered = [p for p in config.pools if any(not d.endpoints for d in p.deployments)]
    for pool_data, pool in zip(data["pools"], config.pools, strict=True):
        if pool in rendered and pool.discovery is None:
            pool_data["discovery"] = {
                "kind": "kubernetes",
                "namespace": _NAMESPACE_TOKEN,
                "selector": {NAME_LABEL: ENGINE_NAME, POOL_LABEL: label_value(pool.name)},
                "port": config.deploy.engine.port,
            }
    header = (
        "# Rendered by `gpufleet render` for the in-cluster gateway; edit fleet.yaml instead.\n"
    )
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
    return header + text.replace(_NAMESPACE_TOKEN, json.dumps(namespace))


def _pool_spec(
    pool: PoolConfig,
    layouts: list[tuple[EngineLayout, EngineSpec]],
    instances: InstanceCatalog,
) -> PoolSpec:
    first = layouts[0][0]
    largest = max(layouts, key=lambda item: item[0].gpus_per_pod)[0]
    instance = largest.instance
    nodes_min = nodes_max = 0
    for layout, spec in layouts:
        nodes_min += _nodes(layout, spec.replicas, instance)
        nodes_max += _nodes(layout, spec.max_replicas, instance)
    types: tuple[InstanceType, ...] = ()
    if instance is not None:
        types = (instance,)
        if pool.capacity == "spot":
            types = instances.same_gpu_count(first.gpu_key, instance)
    return PoolSpec(
        name=pool.name,
        label=label_value(pool.name),
        gpu_type=label_value(first.gpu_key),
        capacity=pool.capacity,
        instance=instance,
        instance_types=types,
        min_nodes=nodes_min,
        max_nodes=max(nodes_max, 1),
        weight_bytes=sum({s.model: layout.weight_bytes or 0 for layout, s in layouts}.values()),
        price_usd_per_gpu_hour=pool.price_usd_per_gpu_hour,
        gpus_per_replica=pool.gpus_per_replica,
    )


def _nodes(layout: EngineLayout, replicas: int, instance: InstanceType | None) -> int:
    """Nodes for ``replicas`` of a workload when its pods pack onto ``instance`` types."""
    if layout.multi_node:
        return replicas * layout.num_nodes
    per_node = instance.gpus // layout.gpus_per_pod if instance is not None else 1
    return math.ceil(replicas / max(per_node, 1))


def _pools_serving(config: FleetConfig) -> dict[str, int]:
    counts = {m.name: 0 for m in config.models}
    for pool in config.pools:
        for model in {d.model for d in pool.deployments if not d.endpoints}:
            counts[model] += 1
    return counts


def _check_deploy_models(config: FleetConfig) -> None:
    known = {m.name for m in config.models}
    for name, model_deploy in config.deploy.models.items():
        if name not in known:
            raise ConfigError(
                f"fleet.yaml: deploy.models.{name}: unknown model "
                f"(known: {', '.join(sorted(known))})"
            )
        adapters = set(config.model(name).lora_adapters)
        for adapter in model_deploy.lora_sources:
            if adapter not in adapters:
                raise ConfigError(
                    f"fleet.yaml: deploy.models.{name}.lora_sources.{adapter}: "
                    f"not one of the model's lora_adapters"
                )
