"""The Kubernetes actuator: the scale subresource of the engine Deployments.

Implements `gpufleet.control.actuator.Actuator` for the Deployments ``gpufleet render``
writes: one per (model, pool), named ``vllm-<model>-<pool>`` (`deploy.engine_spec`), in
the pool's discovery namespace (else ``deploy.namespace``). Replica ids are the gateway
endpoint ids of Kubernetes discovery, ``pool/model/<pod>``.

- ``refresh`` reads each Deployment's ``spec.replicas`` and ``status.readyReplicas``;
  ``pending`` = spec − ready (pods starting);
- ``set_active(key, n)`` PATCHes ``deployments/<name>/scale`` with
  ``{"spec": {"replicas": n + leaving}}`` (merge patch): pods under notice still count in
  the Deployment until their notice ends;
- ``leave(id)`` annotates the pod ``controller.kubernetes.io/pod-deletion-cost: -1000000``
  so that the ReplicaSet removes it first when the Deployment scales down;
- ``retire(id)`` (end of notice) scales the Deployment down by that pod.

Multi-node replicas (LeaderWorkerSets) are not scaled. A Deployment that does not exist
is reported once and left alone. API failures raise ``GpufleetError``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import httpx2
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from gpufleet.backends.discovery_labels import ENGINE_NAME, label_value
from gpufleet.config import FleetConfig
from gpufleet.deploy.engine_spec import MAX_ENGINE_NAME
from gpufleet.errors import GpufleetError

log = logging.getLogger("gpufleet.controller")
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
LEAVING_COST = "-1000000"
NOT_FOUND = 404


@dataclass(frozen=True, slots=True)
class EngineWorkload:
    key: str
    namespace: str
    name: str


def engine_workloads(config: FleetConfig) -> dict[str, EngineWorkload]:
    """Deployment per key for the pools that use Kubernetes discovery (all pools when
    none does)."""
    pools = [p for p in config.pools if p.discovery is not None] or list(config.pools)
    out = {}
    for pool in pools:
        namespace = pool.discovery.namespace if pool.discovery else config.deploy.namespace
        for deployment in pool.deployments:
            key = f"{pool.name}/{deployment.model}"
            name = label_value(f"{ENGINE_NAME}-{deployment.model}-{pool.name}", MAX_ENGINE_NAME)
            out[key] = EngineWorkload(key, namespace, name)
    return out


class KubernetesActuator:
    def __init__(self, config: FleetConfig, client: AsyncClient):
        self._client = client
        self.workloads = engine_workloads(config)
        self._spec: dict[str, int] = {}
        self._ready: dict[str, int] = {}
        self._leaving: dict[str, str] = {}
        self._missing: set[str] = set()

    # -- Actuator ----------------------------------------------------------------------
    def keys(self) -> Iterable[str]:
        return tuple(self.workloads)

    def active(self, key: str) -> int:
        return max(0, self._spec.get(key, 0) - self._num_leaving(key))

    def pending(self, key: str) -> int:
        return max(0, self._spec.get(key, 0) - self._ready.get(key, 0))

    def locate(self, replica_id: str) -> str | None:
        key = replica_id.rpartition("/")[0]
        return key if key in self.workloads else None

    async def refresh(self) -> None:
        for key, workload in self.workloads.items():
            try:
                deployment = await self._client.get(
                    Deployment, workload.name, namespace=workload.namespace
                )
            except httpx2.HTTPStatusError as exc:
                if _code(exc) == NOT_FOUND:
                    self._report_missing(workload)
                    continue
                raise _failure(f"reading Deployment {workload.name}", exc) from None
            except httpx2.HTTPError as exc:
                raise _failure(f"reading Deployment {workload.name}", exc) from None
            self._missing.discard(key)
            spec = deployment.spec.replicas if deployment.spec else None
            status = deployment.status
            self._spec[key] = 1 if spec is None else int(spec)  # Kubernetes' default is 1
            self._ready[key] = int(status.readyReplicas or 0) if status else 0

    async def set_active(self, key: str, replicas: int) -> None:
        await self._scale(key, max(0, replicas) + self._num_leaving(key))

    async def leave(self, replica_id: str) -> None:
        key = self.locate(replica_id)
        if key is None or replica_id in self._leaving:
            return
        self._leaving[replica_id] = key
        workload = self.workloads[key]
        pod = replica_id.rpartition("/")[2]
        patch = {"metadata": {"annotations": {DELETION_COST: LEAVING_COST}}}
        try:
            await self._client.patch(
                Pod, pod, patch, namespace=workload.namespace, patch_type=PatchType.MERGE
            )
        except httpx2.HTTPStatusError as exc:
            if _code(exc) != NOT_FOUND:
                raise _failure(f"annotating pod {pod}", exc) from None
        except httpx2.HTTPError as exc:
            raise _failure(f"annotating pod {pod}", exc) from None

    async def retire(self, replica_id: str) -> None:
        key = self._leaving.pop(replica_id, None)
        if key is None:
            return
        await self._scale(key, max(0, self._spec.get(key, 1) - 1))

    async def close(self) -> None:
        return None

    # -- internals -------------------------------------------------------------------
    def _num_leaving(self, key: str) -> int:
        return sum(1 for k in self._leaving.values() if k == key)

    async def _scale(self, key: str, replicas: int) -> None:
        workload = self.workloads[key]
        if key in self._missing:
            return
        try:
            await self._client.patch(
                Deployment.Scale,
                workload.name,
                {"spec": {"replicas": replicas}},
                namespace=workload.namespace,
                patch_type=PatchType.MERGE,
            )
        except httpx2.HTTPStatusError as exc:
            if _code(exc) == NOT_FOUND:
                self._report_missing(workload)
                return
            raise _failure(f"scaling Deployment {workload.name}", exc) from None
        except httpx2.HTTPError as exc:
            raise _failure(f"scaling Deployment {workload.name}", exc) from None
        self._spec[key] = replicas
        log.info("Deployment %s/%s scaled to %d", workload.namespace, workload.name, replicas)

    def _report_missing(self, workload: EngineWorkload) -> None:
        if workload.key not in self._missing:
            self._missing.add(workload.key)
            log.warning(
                "no Deployment %s in namespace %s (for %s): not scaled (render it with "
                "`gpufleet render --target k8s`)", workload.name, workload.namespace, workload.key,
            )  # fmt: skip


def _code(exc: httpx2.HTTPStatusError) -> int | None:
    """The status of a refused call (lightkube's ApiError carries the API's Status)."""
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.code is not None:
        return int(exc.status.code)
    response = getattr(exc, "response", None)
    return response.status_code if response is not None else None


def _failure(what: str, exc: Exception) -> GpufleetError:
    if isinstance(exc, ApiError) and exc.status is not None:
        return GpufleetError(f"kubernetes: {what}: {exc.status.code} {exc.status.message}")
    if isinstance(exc, httpx2.HTTPStatusError):
        return GpufleetError(f"kubernetes: {what}: {_code(exc)}")
    return GpufleetError(f"kubernetes: {what}: {exc}")
