"""The ``kubernetes`` discovery source: a pool's endpoints from watched EndpointSlices.

Contract: ``run_kubernetes_discovery(config, pool, fleet)`` keeps ``fleet`` in step with
the EndpointSlices that ``pool.discovery`` selects (namespace, labels; by default
``app.kubernetes.io/name=vllm,gpufleet.io/pool=<pool>``) until it is cancelled, then
removes the endpoints it added. How slices map to endpoints: `discovery_slices`.

Algorithm (the Kubernetes list/watch protocol):

1. list the slices → replace the known set → reconcile; note the list's resourceVersion;
2. watch from that resourceVersion, applying ADDED/MODIFIED/DELETED as they arrive and
   remembering the resourceVersion of each event;
3. a watch that ends or breaks (closed stream, reset connection) resumes from the last
   resourceVersion, after a back-off when it broke; a ``410 Gone`` (expired
   resourceVersion, as an HTTP status or an ERROR event) goes back to 1;
4. every ``relist_interval_s`` go back to 1 anyway, so nothing a watch missed lingers;
5. a failed list is retried with exponential back-off (capped, jittered).

The client is lightkube's ``AsyncClient`` (in-cluster service account or kubeconfig from
the environment unless one is passed in).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import httpx2
from lightkube import AsyncClient
from lightkube.core.client import LabelSelector
from lightkube.core.exceptions import ApiError, NotReadyError
from lightkube.core.exceptions import ConfigError as KubeConfigError
from lightkube.resources.discovery_v1 import EndpointSlice

from gpufleet.backends.discovery_labels import default_selector
from gpufleet.backends.discovery_slices import SliceReconciler
from gpufleet.config import FleetConfig, PoolConfig
from gpufleet.errors import ConfigError
from gpufleet.gateway.fleet import FleetState

log = logging.getLogger("gpufleet.discovery")
GONE = 410


@dataclass(frozen=True)
class DiscoveryOptions:
    relist_interval_s: float = 300.0
    """Full list this often even while the watch is healthy."""
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    server_timeout_s: int = 240
    """The API server closes each watch request after this long; it is resumed."""


async def run_kubernetes_discovery(
    config: FleetConfig,
    pool: PoolConfig,
    fleet: FleetState,
    *,
    client: AsyncClient | None = None,
    options: DiscoveryOptions | None = None,
) -> None:
    """Watch ``pool``'s EndpointSlices into ``fleet`` until cancelled (see module doc)."""
    discovery = pool.discovery
    if discovery is None or discovery.kind != "kubernetes":
        raise ConfigError(f"pools[{pool.name}].discovery: not a kubernetes discovery")
    options = options or DiscoveryOptions()
    own_client = client is None
    if client is None:
        try:
            client = AsyncClient()
        except KubeConfigError as exc:
            raise ConfigError(
                f"pools[{pool.name}].discovery: no Kubernetes access: {exc}"
            ) from None
    watcher = _Watcher(
        client,
        SliceReconciler(config, pool, fleet),
        discovery.namespace,
        _selector(discovery.selector or default_selector(pool.name)),
        options,
        random.Random(pool.name),
    )
    try:
        await watcher.run()
    finally:
        watcher.reconciler.clear()
        if own_client:
            await client.close()


class _Watcher:
    def __init__(
        self,
        client: AsyncClient,
        reconciler: SliceReconciler,
        namespace: str,
        selector: LabelSelector,
        options: DiscoveryOptions,
        rng: random.Random,
    ):
        self.client = client
        self.reconciler = reconciler
        self.namespace = namespace
        self.selector = selector
        self.options = options
        self.rng = rng
        self.num_failures = 0
        self.version = ""
        """resourceVersion of the last list or event applied."""

    async def run(self) -> None:
        while True:
            try:
                await self._list()
            except (httpx2.HTTPError, ValueError, NotReadyError) as exc:
                await self._back_off(f"list failed: {exc!r}")
                continue
            self.num_failures = 0
            await self._watch()

    async def _list(self) -> None:
        listing = self.client.list(EndpointSlice, namespace=self.namespace, labels=self.selector)
        slices = [item async for item in listing]
        self.reconciler.replace_all(slices)
        self.version = listing.resourceVersion
        log.debug("listed %d EndpointSlices at %s", len(slices), self.version)

    async def _watch(self) -> None:
        """Apply watch events from ``self.version`` until a relist is due."""
        loop = asyncio.get_running_loop()
        relist_at = loop.time() + self.options.relist_interval_s
        while (remaining := relist_at - loop.time()) > 0:
            try:
                async with asyncio.timeout(remaining):
                    await self._follow()
            except TimeoutError:
                return
            except httpx2.HTTPStatusError as exc:
                if _status_code(exc) == GONE:
                    log.info("watch resourceVersion %s expired (410): relisting", self.version)
                    return
                await self._back_off(f"watch failed: {exc}")
            except (httpx2.HTTPError, ValueError) as exc:
                await self._back_off(f"watch broke at resourceVersion {self.version}: {exc!r}")

    async def _follow(self) -> None:
        events = self.client.watch(
            EndpointSlice,
            namespace=self.namespace,
            labels=self.selector,
            resource_version=self.version,
            server_timeout=self.options.server_timeout_s,
        )
        async for event, item in events:
            self.num_failures = 0
            if item.metadata is not None and item.metadata.resourceVersion:
                self.version = item.metadata.resourceVersion
            if event == "DELETED":
                self.reconciler.delete(item)
            elif event in ("ADDED", "MODIFIED"):
                self.reconciler.upsert(item)

    async def _back_off(self, reason: str) -> None:
        self.num_failures += 1
        options = self.options
        delay = min(options.retry_max_s, options.retry_base_s * 2 ** (self.num_failures - 1))
        delay *= 0.5 + self.rng.random() / 2
        log.warning("kubernetes discovery: %s; retrying in %.1f s", reason, delay)
        await asyncio.sleep(delay)


def _selector(labels: dict[str, str]) -> LabelSelector:
    return {key: value for key, value in labels.items()}


def _status_code(exc: httpx2.HTTPStatusError) -> int | None:
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.code is not None:
        return int(exc.status.code)
    response = getattr(exc, "response", None)
    return response.status_code if response is not None else None
