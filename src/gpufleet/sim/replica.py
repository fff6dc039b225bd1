"""A simulated replica as routing sees it: an `EndpointView` over one `EngineModel`.

Contract: `SimReplica` presents the same load signals the live gateway's
endpoint computes (``gpufleet.backends.endpoint.LiveEndpoint``), so routing
plugins decide on the same numbers:

- the engine gauges are *scraped*: a snapshot of the engine's waiting/running
  counts and KV usage, refreshed lazily when routing reads a replica whose
  snapshot is older than the scrape interval (the gateway polls every
  ``scrape.interval_s``; a lazy refresh at the first read after the interval
  sees the same staleness bound without one event per scrape);
- ``num_waiting`` is burst-corrected exactly as the gateway does: the scraped
  queue plus dispatches since the scrape minus completions since, and at least
  the in-flight requests the scraped running count does not cover.

Lifecycle states: ``starting`` (cold start, not routable) → ``ready`` →
``draining`` (spot notice or scale-down: no new requests) → ``stopped``.
"""

from __future__ import annotations

from typing import Any

from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.step_result import StepResult
from gpufleet.routing.burst_load import BurstLoad

STARTING, READY, STOPPED = "starting", "ready", "stopped"


class VirtualClock:
    """The simulator's current time, shared by every replica (for ``metrics_age_s``)."""

    __slots__ = ("now_s",)

    def __init__(self) -> None:
        self.now_s = 0.0


class SimReplica:
    """One replica of one deployment (model × pool), satisfying ``EndpointView``."""

    __slots__ = (
        "_clock",
        "_scraped_kv",
        "_scraped_running",
        "_scraped_waiting",
        "adapters",
        "busy",
        "cost_usd_per_mtok",
        "draining",
        "engine",
        "gpu",
        "gpus",
        "id",
        "index",
        "kv_capacity_tokens",
        "live",
        "load",
        "max_loras",
        "model",
        "models",
        "pending",
        "pool",
        "prefill_tokens_per_s",
        "price_usd_per_hour",
        "provisioned_s",
        "ready_s",
        "running_adapters",
        "scrape_interval_s",
        "scraped_at",
        "state",
        "stopped_s",
        "url",
    )

    def __init__(
        self,
        *,
        index: int,
        replica_id: str,
        model: str,
        pool: str,
        gpu: str,
        gpus: int,
        price_usd_per_gpu_hour: float,
        engine: EngineModel,
        clock: VirtualClock,
        scrape_interval_s: float,
        provisioned_s: float,
        prefill_tokens_per_s: float = 0.0,
        cost_usd_per_mtok: float = 0.0,
    ) -> None:
        self.index = index
        self.id = replica_id
        self.url = f"sim://{replica_id}"
        self.model = model
        self.models = frozenset({model})
        self.adapters: frozenset[str] = frozenset()
        self.running_adapters: frozenset[str] = frozenset()
        self.max_loras = 0
        self.pool = pool
        self.gpu = gpu
        self.gpus = gpus
        self.price_usd_per_hour = price_usd_per_gpu_hour * gpus
        self.engine = engine
        self._clock = clock
        self.scrape_interval_s = scrape_interval_s
        self.kv_capacity_tokens = engine.config.num_gpu_blocks * engine.config.block_size
        self.prefill_tokens_per_s = prefill_tokens_per_s
        self.cost_usd_per_mtok = cost_usd_per_mtok
        self.state = STARTING
        self.draining = False
        self.busy = False
        self.live: dict[str, Any] = {}
        self.pending: StepResult | None = None
        self.load = BurstLoad()
        self._scraped_waiting = 0.0
        self._scraped_running = 0.0
        self._scraped_kv = 0.0
        self.scraped_at = -float("inf")
        self.provisioned_s = provisioned_s
        self.ready_s = float("inf")
        self.stopped_s = float("inf")

    # EndpointView -------------------------------------------------------------------
    @property
    def routable(self) -> bool:
        return self.state == READY and not self.draining

    @property
    def num_waiting(self) -> float:
        return self.load.waiting(self._scraped_waiting, self._scraped_running)

    @property
    def num_in_flight(self) -> int:
        return self.load.num_in_flight

    @property
    def num_in_flight_tokens(self) -> int:
        return self.load.num_in_flight_tokens

    @property
    def num_running(self) -> float:
        return self._scraped_running

    @property
    def kv_usage(self) -> float:
        return self._scraped_kv

    @property
    def metrics_age_s(self) -> float:
        return self._clock.now_s - self.scraped_at

    # simulator side ------------------------------------------------------------------
    def refresh(self, now_s: float) -> None:
        """Take a new scrape if the last one is older than the scrape interval."""
        if now_s - self.scraped_at >= self.scrape_interval_s:
            stats = self.engine.stats
            self._scraped_waiting = float(stats.num_waiting)
            self._scraped_running = float(stats.num_running)
            self._scraped_kv = stats.kv_cache_usage_perc
            self.load.scraped(self.load.counters())
            self.scraped_at = now_s

    def on_dispatch(self, num_tokens: int) -> None:
        self.load.on_dispatch(num_tokens)

    def on_complete(self, num_tokens: int) -> None:
        self.load.on_complete(num_tokens)

    def gpu_hours(self, end_s: float) -> float:
        """GPU-hours billed from provisioning to stop (or ``end_s``)."""
        stop = min(self.stopped_s, end_s)
        return max(0.0, stop - self.provisioned_s) * self.gpus / 3600.0
