"""EndpointSlices → the gateway's endpoints of one pool (no I/O; used by discovery_k8s).

Contract: `SliceReconciler` holds the last known EndpointSlices of one pool and, after
every change (``replace_all`` after a list, ``upsert``/``delete`` per watch event),
makes the FleetState match them:

- an endpoint that is ready (a missing condition counts as ready, as Kubernetes
  specifies) and not terminating is added if absent and marked healthy;
- a terminating endpoint is marked draining (never undrained by discovery; it only
  leaves by being removed); one that is absent is not added;
- an endpoint neither ready nor terminating is marked unhealthy (the gateway's own
  probes may bring it back) and is not added if absent;
- an endpoint in no slice any more is removed.

Health is written only when an endpoint's conditions change, so the gateway's probes
and passive ejection keep authority between changes (an ejected endpoint stays ejected).
Only endpoints this reconciler added are ever changed or removed. Ids are
``pool/model/pod`` (the pod's name, else its address); URLs ``http://address:port``.
Model, pool and GPU come from the slice's labels (`discovery_labels`), falling back to
the pool's only model and the pool's GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from lightkube.resources.discovery_v1 import EndpointSlice

from gpufleet.backends.discovery_labels import GPU_LABEL, MODEL_LABEL, label_value
from gpufleet.backends.endpoint import EndpointSpec
from gpufleet.config import FleetConfig, PoolConfig
from gpufleet.gateway.fleet import FleetState
from gpufleet.types import EndpointHealth

log = logging.getLogger("gpufleet.discovery")


@dataclass(frozen=True)
class DiscoveredEndpoint:
    spec: EndpointSpec
    ready: bool
    terminating: bool


class SliceReconciler:
    def __init__(self, config: FleetConfig, pool: PoolConfig, fleet: FleetState):
        self._config = config
        self._pool = pool
        self._fleet = fleet
        self._models = {label_value(m.name): m.name for m in config.models}
        self._slices: dict[str, list[DiscoveredEndpoint]] = {}
        self._owned: set[str] = set()
        self._conditions: dict[str, tuple[bool, bool]] = {}
        self._warned: set[str] = set()

    @property
    def owned(self) -> frozenset[str]:
        """Ids of the endpoints this reconciler put into the fleet."""
        return frozenset(self._owned)

    def replace_all(self, slices: Iterable[EndpointSlice]) -> None:
        self._slices = {}
        for item in slices:
            name = _name(item)
            if name:
                self._slices[name] = self._endpoints(item)
        self._reconcile()

    def upsert(self, item: EndpointSlice) -> None:
        name = _name(item)
        if name:
            self._slices[name] = self._endpoints(item)
            self._reconcile()

    def delete(self, item: EndpointSlice) -> None:
        if self._slices.pop(_name(item), None) is not None:
            self._reconcile()

    def clear(self) -> None:
        """Remove every endpoint this reconciler added (discovery stopped)."""
        self._slices = {}
        self._reconcile()

    # -- slices → endpoints -------------------------------------------------------------
    def _endpoints(self, item: EndpointSlice) -> list[DiscoveredEndpoint]:
        pool = self._pool
        labels = item.metadata.labels if item.metadata and item.metadata.labels else {}
        model = self._model(labels.get(MODEL_LABEL), _name(item))
        if model is None:
            return []
        gpu_label = labels.get(GPU_LABEL)
        gpu = pool.gpu if gpu_label in (None, label_value(pool.gpu)) else str(gpu_label)
        port = self._port(item)
        ipv6 = item.addressType == "IPv6"
        adapters = frozenset(self._config.model(model).lora_adapters)
        price = pool.price_usd_per_gpu_hour * pool.gpus_per_replica
        out = []
        for endpoint in item.endpoints or ():
            if not endpoint.addresses:
                continue
            address = endpoint.addresses[0]
            host = f"[{address}]" if ipv6 else address
            target = endpoint.targetRef.name if endpoint.targetRef else None
            conditions = endpoint.conditions
            ready = conditions is None or conditions.ready is not False
            terminating = conditions is not None and conditions.terminating is True
            spec = EndpointSpec(
                id=f"{pool.name}/{model}/{target or address}",
                url=f"http://{host}:{port}",
                model=model,
                pool=pool.name,
                gpu=gpu,
                price_usd_per_hour=price,
                adapters=adapters,
            )
            out.append(DiscoveredEndpoint(spec, ready and not terminating, terminating))
        return out

    def _model(self, label: str | None, slice_name: str) -> str | None:
        if label is not None and label in self._models:
            return self._models[label]
        deployed = {d.model for d in self._pool.deployments}
        if label is None and len(deployed) == 1:
            return next(iter(deployed))
        if slice_name not in self._warned:
            self._warned.add(slice_name)
            log.warning(
                "pool %s: EndpointSlice %s names no known model (label %s=%r); ignored",
                self._pool.name,
                slice_name,
                MODEL_LABEL,
                label,
            )
        return None

    def _port(self, item: EndpointSlice) -> int:
        wanted = self._pool.discovery.port if self._pool.discovery else 8000
        ports = [p for p in item.ports or () if p.port is not None]
        for port in ports:
            if port.port == wanted:
                return wanted
        for port in ports:
            if port.name == "http" and port.port is not None:
                return port.port
        return wanted

    # -- endpoints → fleet --------------------------------------------------------------
    def _reconcile(self) -> None:
        desired: dict[str, DiscoveredEndpoint] = {}
        for endpoints in self._slices.values():
            for found in endpoints:
                seen = desired.get(found.spec.id)
                if seen is None or (found.ready and not seen.ready):
                    desired[found.spec.id] = found
        for endpoint_id in sorted(self._owned - desired.keys()):
            self._remove(endpoint_id)
        for endpoint_id, found in desired.items():
            self._apply(endpoint_id, found)

    def _apply(self, endpoint_id: str, found: DiscoveredEndpoint) -> None:
        fleet = self._fleet
        live = fleet.endpoints.get(endpoint_id)
        if live is not None and endpoint_id in self._owned and live.spec != found.spec:
            self._remove(endpoint_id)
            live = None
        if live is None:
            if not found.ready:
                return
            if fleet.find(found.spec.url) is not None:
                return
            live = fleet.add(found.spec)
            self._owned.add(endpoint_id)
            log.info("discovered endpoint %s at %s", endpoint_id, found.spec.url)
        elif endpoint_id not in self._owned:
            return
        state = (found.ready, found.terminating)
        if self._conditions.get(endpoint_id) == state:
            return
        self._conditions[endpoint_id] = state
        if found.terminating:
            if not live.draining:
                log.info("endpoint %s is terminating: draining", endpoint_id)
            live.draining = True
        elif found.ready:
            if live.health is not EndpointHealth.EJECTED:
                live.health = EndpointHealth.HEALTHY
        else:
            live.health = EndpointHealth.UNHEALTHY

    def _remove(self, endpoint_id: str) -> None:
        self._fleet.remove(endpoint_id)
        self._owned.discard(endpoint_id)
        self._conditions.pop(endpoint_id, None)
        log.info("endpoint %s is gone", endpoint_id)


def _name(item: EndpointSlice) -> str:
    return item.metadata.name or "" if item.metadata else ""
