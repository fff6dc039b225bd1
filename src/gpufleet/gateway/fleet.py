"""The gateway's view of the fleet: live endpoints per model, and their active health checks."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable

from gpufleet.backends.client import fetch
from gpufleet.backends.endpoint import EndpointSpec, LiveEndpoint
from gpufleet.backends.engine_metrics import parse_metrics
from gpufleet.config import FleetConfig, HealthConfig, ScrapeConfig
from gpufleet.errors import BackendError
from gpufleet.plan.catalog import Catalog
from gpufleet.plan.economics import replica_economics
from gpufleet.types import EndpointHealth

log = logging.getLogger("gpufleet.fleet")


def static_endpoint_specs(config: FleetConfig) -> list[EndpointSpec]:
    """One spec per static endpoint URL in fleet.yaml, ids ``pool/model/index``; modelled
    cost per token and prefill speed come from the catalog when it knows the deployment."""
    specs = []
    catalog = Catalog.load()
    for pool in config.pools:
        price = pool.price_usd_per_gpu_hour * pool.gpus_per_replica
        for deployment in pool.deployments:
            model = config.model(deployment.model)
            adapters = frozenset(model.lora_adapters)
            economics = replica_economics(
                catalog, model.spec or model.name, pool.gpu, pool.gpus_per_replica, price,
                model.context_length,
            ) if deployment.endpoints else None  # fmt: skip
            for index, url in enumerate(deployment.endpoints):
                specs.append(
                    EndpointSpec(
                        id=f"{pool.name}/{deployment.model}/{index}",
                        url=url,
                        model=deployment.model,
                        pool=pool.name,
                        gpu=pool.gpu,
                        price_usd_per_hour=price,
                        adapters=adapters,
                        cost_usd_per_mtok=economics.cost_usd_per_mtok if economics else 0.0,
                        prefill_tokens_per_s=economics.prefill_tokens_per_s if economics else 0.0,
                    )
                )
    return specs


class FleetState:
    """Endpoints by model. Endpoints may come and go (discovery); lookups stay O(1)."""

    def __init__(self, health: HealthConfig, scrape: ScrapeConfig | None = None):
        self._health = health
        self._scrape = scrape or ScrapeConfig(enabled=False)
        self.endpoints: dict[str, LiveEndpoint] = {}
        self.by_model: dict[str, list[LiveEndpoint]] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._scrapers: dict[str, asyncio.Task[None]] = {}

    def add(self, spec: EndpointSpec) -> LiveEndpoint:
        existing = self.endpoints.get(spec.id)
        if existing is not None:
            return existing
        endpoint = LiveEndpoint(spec, self._health)
        self.endpoints[spec.id] = endpoint
        self.by_model.setdefault(spec.model, []).append(endpoint)
        if _loop_running():
            self._start_tasks(endpoint)
        return endpoint

    def _start_tasks(self, endpoint: LiveEndpoint) -> None:
        loop = asyncio.get_running_loop()
        if endpoint.id not in self._probes:
            self._probes[endpoint.id] = loop.create_task(self._probe_loop(endpoint))
        if self._scrape.enabled and endpoint.id not in self._scrapers:
            self._scrapers[endpoint.id] = loop.create_task(self._scrape_loop(endpoint))

    def remove(self, endpoint_id: str) -> None:
        endpoint = self.endpoints.pop(endpoint_id, None)
        if endpoint is None:
            return
        self.by_model[endpoint.spec.model].remove(endpoint)
        for tasks in (self._probes, self._scrapers):
            task = tasks.pop(endpoint_id, None)
            if task is not None:
                task.cancel()
        endpoint.pool_connections.close()
        endpoint.scrape_connections.close()

    def find(self, key: str) -> LiveEndpoint | None:
        """By id or by URL."""
        endpoint = self.endpoints.get(key)
        if endpoint is not None:
            return endpoint
        for candidate in self.endpoints.values():
            if candidate.url.rstrip("/") == key.rstrip("/"):
                return candidate
        return None

    def load_version(self, model: str) -> tuple[object, ...]:
        """The load versions of the model's endpoints (`LiveEndpoint.load_version`)."""
        return tuple(e.load_version() for e in self.by_model.get(model, ()))

    def ready_models(self, models: Iterable[str]) -> dict[str, bool]:
        return {m: any(e.routable for e in self.by_model.get(m, ())) for m in models}

    async def probe_all(self) -> None:
        """Probe every endpoint once, concurrently (used at startup)."""
        await asyncio.gather(*(self._probe(e) for e in list(self.endpoints.values())))

    async def start(self) -> None:
        for endpoint in self.endpoints.values():
            self._start_tasks(endpoint)

    async def stop(self) -> None:
        tasks = [*self._probes.values(), *self._scrapers.values()]
        self._probes.clear()
        self._scrapers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for endpoint in self.endpoints.values():
            endpoint.pool_connections.close()
            endpoint.scrape_connections.close()

    async def _probe_loop(self, endpoint: LiveEndpoint) -> None:
        config = self._health
        rng = random.Random(endpoint.id)
        while True:
            await asyncio.sleep(config.interval_s * (1 + config.jitter * (2 * rng.random() - 1)))
            await self._probe(endpoint)

    async def _scrape_loop(self, endpoint: LiveEndpoint) -> None:
        """Poll ``/metrics`` on its own connection, so a scrape never waits behind
        (or blocks) a request; failures keep the last values, whose age grows."""
        config = self._scrape
        rng = random.Random(endpoint.id + "/scrape")
        kind: str | None = None
        while True:
            try:
                counters = endpoint.scrape_started()
                status, _, body = await fetch(
                    endpoint.scrape_connections,
                    endpoint.host_header,
                    "GET",
                    endpoint.base_path + "/metrics",
                    config.timeout_s,
                )
                if status == 200:
                    metrics = parse_metrics(body, kind)
                    if metrics is not None:
                        kind = metrics.kind
                        endpoint.apply_scrape(metrics, time.monotonic(), counters)
            except BackendError:
                pass
            await asyncio.sleep(config.interval_s * (1 + config.jitter * (2 * rng.random() - 1)))

    async def _probe(self, endpoint: LiveEndpoint) -> None:
        before = endpoint.health
        try:
            status, _, _ = await fetch(
                endpoint.pool_connections,
                endpoint.host_header,
                "GET",
                endpoint.base_path + "/health",
                self._health.timeout_s,
            )
            ok = status == 200
        except BackendError:
            ok = False
        endpoint.record_probe(ok, time.monotonic())
        if endpoint.health is not before and before is not EndpointHealth.STARTING:
            log.warning("endpoint %s is now %s", endpoint.id, endpoint.health.value)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# -- runtime endpoints (control plane: local actuator) -------------------------------------
def runtime_endpoint_spec(
    config: FleetConfig, pool_name: str, model_name: str, endpoint_id: str, url: str
) -> EndpointSpec:
    """The spec of one endpoint added while the gateway runs (a replica the control plane
    started), priced and modelled like the static endpoints of that pool and model."""
    pool = next((p for p in config.pools if p.name == pool_name), None)
    if pool is None:
        raise KeyError(pool_name)
    model = config.model(model_name)
    price = pool.price_usd_per_gpu_hour * pool.gpus_per_replica
    economics = replica_economics(
        Catalog.load(), model.spec or model.name, pool.gpu, pool.gpus_per_replica, price,
        model.context_length,
    )  # fmt: skip
    return EndpointSpec(
        id=endpoint_id,
        url=url,
        model=model.name,
        pool=pool.name,
        gpu=pool.gpu,
        price_usd_per_hour=price,
        adapters=frozenset(model.lora_adapters),
        cost_usd_per_mtok=economics.cost_usd_per_mtok if economics else 0.0,
        prefill_tokens_per_s=economics.prefill_tokens_per_s if economics else 0.0,
    )


async def probe_endpoint(fleet: FleetState, endpoint_id: str) -> None:
    """Probe one endpoint now (a replica just registered need not wait for its next probe)."""
    endpoint = fleet.endpoints.get(endpoint_id)
    if endpoint is not None:
        await fleet._probe(endpoint)
