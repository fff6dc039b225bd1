"""Spot notices from the cluster: watch Nodes for the taints of `notices.NOTICE_TAINTS`.

Algorithm (list/watch, as the discovery source does): list the Nodes, then watch from
the list's resourceVersion; a watch that ends is resumed from the last resourceVersion,
one that breaks after a back-off, a ``410 Gone`` relists. A node that carries a notice
taint (and did not before) is *noticed* once: the engine pods on it (label
``app.kubernetes.io/name=vllm``, field ``spec.nodeName``, in every engine namespace) are
mapped to replica ids ``pool/model/<pod>`` through their ``gpufleet.io/pool`` and
``gpufleet.io/model`` labels, and each gets a `Notice` (source: the taint key) handed to
the preemption handler. A node whose notice taint goes away may be noticed again later.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable

import httpx2
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Node, Pod

from gpufleet.backends.discovery_labels import (
    ENGINE_NAME,
    MODEL_LABEL,
    NAME_LABEL,
    POOL_LABEL,
    label_value,
)
from gpufleet.config import FleetConfig
from gpufleet.control.notices import Notice, notice_from_taints
from gpufleet.errors import GpufleetError

log = logging.getLogger("gpufleet.controller")
GONE = 410
NoticeSink = Callable[[Notice], Awaitable[object]]


class NodeWatcher:
    def __init__(
        self,
        config: FleetConfig,
        client: AsyncClient,
        namespaces: Iterable[str],
        sink: NoticeSink,
        *,
        retry_base_s: float = 0.5,
        retry_max_s: float = 30.0,
        server_timeout_s: int = 240,
    ):
        self._client = client
        self._namespaces = tuple(sorted(set(namespaces)))
        self._sink = sink
        self._pools = {label_value(p.name): p.name for p in config.pools}
        self._models = {label_value(m.name): m.name for m in config.models}
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._server_timeout_s = server_timeout_s
        self._rng = random.Random(0)
        self._failures = 0
        self._version = ""
        self.noticed: set[str] = set()
        """Nodes under notice now."""

    async def run(self) -> None:
        while True:
            try:
                listing = self._client.list(Node)
                nodes = [node async for node in listing]
                self._version = listing.resourceVersion
            except (ApiError, httpx2.HTTPError, ValueError) as exc:
                await self._back_off(f"listing nodes failed: {exc!r}")
                continue
            self._failures = 0
            for node in nodes:
                await self._apply(node)
            await self._watch()

    async def _watch(self) -> None:
        while True:
            try:
                events = self._client.watch(
                    Node, resource_version=self._version, server_timeout=self._server_timeout_s
                )
                async for kind, node in events:
                    self._failures = 0
                    if node.metadata is not None and node.metadata.resourceVersion:
                        self._version = node.metadata.resourceVersion
                    if kind == "DELETED":
                        self.noticed.discard(_name(node))
                    elif kind in ("ADDED", "MODIFIED"):
                        await self._apply(node)
            except httpx2.HTTPStatusError as exc:
                if _status(exc) == GONE:
                    log.info("node watch expired (410): relisting")
                    return
                await self._back_off(f"node watch failed: {exc}")
            except (httpx2.HTTPError, ValueError) as exc:
                await self._back_off(f"node watch broke: {exc!r}")

    async def _apply(self, node: Node) -> None:
        name = _name(node)
        taints = node.spec.taints if node.spec is not None and node.spec.taints else []
        found = notice_from_taints((t.key, t.effect) for t in taints)
        if found is None:
            self.noticed.discard(name)
            return
        if name in self.noticed:
            return
        self.noticed.add(name)
        source, notice_s = found
        replicas = await self._replicas_on(name)
        log.warning("node %s has %s: %d engine replicas get a %.0f s notice: %s", name, source,
                    len(replicas), notice_s, ", ".join(replicas) or "none")  # fmt: skip
        for replica in replicas:
            try:
                await self._sink(Notice(replica, notice_s, source))
            except GpufleetError as exc:
                log.error("notice for %s on node %s not handled: %s", replica, name, exc)

    async def _replicas_on(self, node: str) -> list[str]:
        out = []
        for namespace in self._namespaces:
            pods = self._client.list(
                Pod,
                namespace=namespace,
                labels={NAME_LABEL: ENGINE_NAME},
                fields={"spec.nodeName": node},
            )
            try:
                async for pod in pods:
                    replica = self._replica_id(pod)
                    if replica is not None:
                        out.append(replica)
            except (ApiError, httpx2.HTTPError) as exc:
                log.error("listing the pods on node %s in %s failed: %s", node, namespace, exc)
        return out

    def _replica_id(self, pod: Pod) -> str | None:
        meta = pod.metadata
        labels = meta.labels or {} if meta is not None else {}
        pool = self._pools.get(labels.get(POOL_LABEL, ""))
        model = self._models.get(labels.get(MODEL_LABEL, ""))
        if meta is None or not meta.name or pool is None or model is None:
            return None
        return f"{pool}/{model}/{meta.name}"

    async def _back_off(self, reason: str) -> None:
        self._failures += 1
        delay = min(self._retry_max_s, self._retry_base_s * 2 ** (self._failures - 1))
        delay *= 0.5 + self._rng.random() / 2
        log.warning("node watch: %s; retrying in %.1f s", reason, delay)
        await asyncio.sleep(delay)


def _name(node: Node) -> str:
    return node.metadata.name or "" if node.metadata is not None else ""


def _status(exc: httpx2.HTTPStatusError) -> int | None:
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.code is not None:
        return int(exc.status.code)
    response = getattr(exc, "response", None)
    return response.status_code if response is not None else None
