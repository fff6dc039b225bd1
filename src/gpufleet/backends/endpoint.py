"""A live replica as the gateway sees it: identity, health, load and its connection pool.

``LiveEndpoint`` satisfies ``EndpointView``; routing reads it synchronously.
Health has two inputs: active checks (``/health`` probes) and passive outlier
detection (consecutive request failures eject the replica for a back-off that
doubles with each ejection, capped).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from gpufleet.backends.connection import ConnectionPool
from gpufleet.backends.engine_metrics import EngineMetrics
from gpufleet.config import HealthConfig
from gpufleet.routing.burst_load import BurstLoad, Counters
from gpufleet.types import EndpointHealth, RouteRequest


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """Static identity of a replica, from fleet.yaml or discovery."""

    id: str
    url: str
    model: str
    pool: str
    gpu: str
    price_usd_per_hour: float
    adapters: frozenset[str] = frozenset()
    cost_usd_per_mtok: float = 0.0
    prefill_tokens_per_s: float = 0.0


class LiveEndpoint:
    """One replica's live state. Mutated only by the gateway's event loop."""

    def __init__(self, spec: EndpointSpec, health: HealthConfig):
        self.spec = spec
        self._health_config = health
        parts = urlsplit(spec.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.host_header = f"{self.host}:{self.port}".encode()
        self.pool_connections = ConnectionPool(spec.id, self.host, self.port)
        self.scrape_connections = ConnectionPool(spec.id, self.host, self.port, max_idle=1)
        self.models = frozenset({spec.model})
        self.health = EndpointHealth.STARTING
        self.draining = False
        self.load = BurstLoad()
        self.scraped: EngineMetrics | None = None
        self.scraped_at = 0.0
        self.consecutive_failures = 0
        self.num_ejections = 0
        self.ejected_until = 0.0

    # EndpointView ---------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def url(self) -> str:
        return self.spec.url

    @property
    def adapters(self) -> frozenset[str]:
        return self.spec.adapters

    @property
    def pool(self) -> str:
        return self.spec.pool

    @property
    def gpu(self) -> str:
        return self.spec.gpu

    @property
    def price_usd_per_hour(self) -> float:
        return self.spec.price_usd_per_hour

    @property
    def routable(self) -> bool:
        return self.health is EndpointHealth.HEALTHY and not self.draining

    # burst-corrected load ----------------------------------------------------------
    @property
    def num_in_flight(self) -> int:
        """Requests the gateway has dispatched to it and not yet seen complete."""
        return self.load.num_in_flight

    @property
    def num_in_flight_tokens(self) -> int:
        return self.load.num_in_flight_tokens

    @property
    def max_priority_in_flight(self) -> float:
        return self.load.max_priority_in_flight

    @property
    def num_waiting(self) -> float:
        """Burst-corrected engine queue (``BurstLoad.waiting``). Without a scrape (or an
        engine that does not export it) this is 0 and the gateway's own in-flight count
        stands in through ``num_running``."""
        scraped = self.scraped
        if scraped is None or scraped.num_waiting is None:
            return 0.0
        return self.load.waiting(scraped.num_waiting, scraped.num_running or 0.0)

    @property
    def num_running(self) -> float:
        scraped = self.scraped
        if scraped is None or scraped.num_running is None:
            return float(self.num_in_flight)
        return scraped.num_running

    @property
    def kv_usage(self) -> float:
        """Burst-corrected KV usage (``BurstLoad.kv_usage``); 0 without a scrape."""
        scraped = self.scraped
        if scraped is None or scraped.kv_usage is None:
            return 0.0
        return self.load.kv_usage(scraped.kv_usage, self.kv_capacity_tokens)

    @property
    def metrics_age_s(self) -> float:
        if self.scraped is None:
            return float("inf")
        return time.monotonic() - self.scraped_at

    @property
    def running_adapters(self) -> frozenset[str]:
        scraped = self.scraped
        return frozenset(scraped.running_lora_adapters) if scraped is not None else frozenset()

    @property
    def max_loras(self) -> int:
        scraped = self.scraped
        return scraped.max_loras or 0 if scraped is not None else 0

    @property
    def kv_capacity_tokens(self) -> int:
        scraped = self.scraped
        if scraped is None or not scraped.num_gpu_blocks or not scraped.block_size:
            return 0
        return scraped.num_gpu_blocks * scraped.block_size

    @property
    def cost_usd_per_mtok(self) -> float:
        return self.spec.cost_usd_per_mtok

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.spec.prefill_tokens_per_s

    def scrape_started(self) -> Counters:
        """Counters at the moment a scrape is sent (pass them to ``apply_scrape``)."""
        return self.load.counters()

    def apply_scrape(
        self, metrics: EngineMetrics, scraped_at: float, counters_at_send: Counters
    ) -> None:
        """A scrape replaces the load estimate; burst corrections count from its sending."""
        self.scraped = metrics
        self.scraped_at = scraped_at
        self.load.scraped(counters_at_send)

    def load_version(self) -> tuple[object, ...]:
        """Changes whenever anything a routing filter reads may have changed: health,
        draining, a scrape, a dispatch or a completion (`AdmissionGate` skips re-routing a
        queue head that failed against the same versions)."""
        load = self.load
        return (
            self.health,
            self.draining,
            self.scraped_at,
            load.num_dispatched_total,
            load.num_completed_total,
        )

    def on_dispatch(self, route: RouteRequest) -> None:
        self.load.on_dispatch(route)

    def on_complete(self, route: RouteRequest) -> None:
        self.load.on_complete(route)

    # passive outlier detection ----------------------------------------------------
    def record_success(self) -> None:
        """A request succeeded: the failure streak and the ejection back-off reset."""
        self.consecutive_failures = 0
        self.num_ejections = 0

    def record_failure(self, now_s: float) -> bool:
        """Count a failed request; returns True when this failure ejected the replica.

        Failures of requests already in flight while the replica is ejected do not count
        again (thousands of them would otherwise re-eject it over and over)."""
        if self.health is EndpointHealth.EJECTED and now_s < self.ejected_until:
            return False
        self.consecutive_failures += 1
        config = self._health_config
        if self.consecutive_failures < config.eject_after_failures:
            return False
        doublings = min(self.num_ejections, 32)  # the back-off is capped long before
        backoff_s = min(config.eject_base_s * 2.0**doublings, config.eject_max_s)
        self.num_ejections += 1
        self.consecutive_failures = 0
        self.ejected_until = now_s + backoff_s
        self.health = EndpointHealth.EJECTED
        return True

    # active health checks ------------------------------------------------------------
    def record_probe(self, ok: bool, now_s: float) -> None:
        """Apply one ``/health`` probe result. An ejected replica stays out until its
        back-off ends, then needs a passing probe to come back."""
        if self.health is EndpointHealth.EJECTED and now_s < self.ejected_until:
            return
        self.health = EndpointHealth.HEALTHY if ok else EndpointHealth.UNHEALTHY

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "url": self.url,
            "model": self.spec.model,
            "pool": self.pool,
            "gpu": self.gpu,
            "engine": self.scraped.kind if self.scraped is not None else None,
            "state": "draining" if self.draining else self.health.value,
            "in_flight": self.num_in_flight,
            "in_flight_tokens": self.num_in_flight_tokens,
            "num_waiting": self.num_waiting,
            "num_running": self.num_running,
            "kv_usage": self.kv_usage,
            "metrics_age_s": None if self.metrics_age_s == float("inf") else self.metrics_age_s,
            "consecutive_failures": self.consecutive_failures,
        }
