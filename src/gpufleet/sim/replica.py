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

The load signals are plain attributes, recomputed when they change (dispatch,
completion, scrape, lifecycle), so a routing decision over many replicas reads
slots instead of calling properties. A scrape of a replica whose engine is in
the middle of a decode run reads the engine's gauges as of that instant
(``EngineModel.load_at``); only when the step in progress finishes requests
does it settle the run and re-arm the replica's step event at the end of that
step (``rearm``).

Lifecycle states: ``starting`` (cold start, not routable) → ``ready`` →
``draining`` (spot notice or scale-down: no new requests) → ``stopped``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.step_result import StepResult
from gpufleet.routing.burst_load import BurstLoad
from gpufleet.types import RouteRequest

STARTING, READY, STOPPED = "starting", "ready", "stopped"
_INF = float("inf")


class VirtualClock:
    """The simulator's current time, shared by every replica (for ``metrics_age_s``)."""

    __slots__ = ("now_s",)

    def __init__(self) -> None:
        self.now_s = 0.0


class SimReplica:
    """One replica of one deployment (model × pool), satisfying ``EndpointView``.

    Step bookkeeping (the simulator's): ``armed_s`` is when the replica's one
    valid step event fires (inf: idle; an event at another time is stale);
    ``pending`` is the result of the single step in flight, ``pending_finished``
    the requests a settled decode run finished in its last applied step; both
    are applied at ``armed_s``."""

    __slots__ = (
        "_clock",
        "_draining",
        "_scraped_kv_usage",
        "_scraped_waiting",
        "_state",
        "adapters",
        "armed_s",
        "cost_usd_per_mtok",
        "engine",
        "gpu",
        "gpus",
        "id",
        "index",
        "kv_capacity_tokens",
        "kv_usage",
        "live",
        "load",
        "max_loras",
        "max_priority_in_flight",
        "model",
        "models",
        "num_in_flight",
        "num_in_flight_tokens",
        "num_running",
        "num_waiting",
        "pending",
        "pending_finished",
        "pool",
        "prefill_tokens_per_s",
        "price_usd_per_hour",
        "provisioned_s",
        "ready_s",
        "rearm",
        "routable",
        "running_adapters",
        "scrape_interval_s",
        "scraped_at",
        "stopped_s",
        "under_notice",
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
        rearm: Callable[[SimReplica], None] | None = None,
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
        self._state = STARTING
        self.under_notice = False
        """Draining because of a spot notice (not a scale-down)."""
        self._draining = False
        self.routable = False
        self.armed_s = _INF
        self.rearm = rearm
        self.live: dict[str, Any] = {}
        self.pending: StepResult | None = None
        self.pending_finished: tuple[str, ...] = ()
        self.load = BurstLoad()
        self.num_in_flight = 0
        self.num_in_flight_tokens = 0
        self.max_priority_in_flight = -_INF
        self.num_waiting = 0.0
        self.num_running = 0.0
        self.kv_usage = 0.0
        self._scraped_waiting = 0.0
        self._scraped_kv_usage = 0.0
        self.scraped_at = -_INF
        self.provisioned_s = provisioned_s
        self.ready_s = _INF
        self.stopped_s = _INF

    # EndpointView (the rest are plain attributes) -------------------------------------
    @property
    def metrics_age_s(self) -> float:
        return self._clock.now_s - self.scraped_at

    @property
    def state(self) -> str:
        """``starting`` → ``ready`` → ``stopped`` (module doc)."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        self._state = value
        self.routable = value == READY and not self._draining

    @property
    def draining(self) -> bool:
        """No new requests (spot notice or scale-down)."""
        return self._draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self._draining = value
        self.routable = self._state == READY and not value

    @property
    def busy(self) -> bool:
        """A step or decode run is in flight (its event is armed)."""
        return self.armed_s != _INF

    # simulator side ------------------------------------------------------------------
    def refresh(self, now_s: float) -> None:
        """Take a new scrape if the last one is older than the scrape interval."""
        if now_s - self.scraped_at >= self.scrape_interval_s:
            engine = self.engine
            load_now = engine.load_at(now_s)
            if load_now is None:
                self.settle_run(now_s)
                load_now = engine.load
            waiting, running, kv_usage = load_now
            self._scraped_waiting = float(waiting)
            self.num_running = float(running)
            self._scraped_kv_usage = self.kv_usage = kv_usage
            load = self.load
            load.scraped(load.counters())
            self.num_waiting = load.waiting(self._scraped_waiting, self.num_running)
            self.scraped_at = now_s

    def settle_run(self, now_s: float) -> None:
        """Apply the engine's decode run up to ``now_s``; its finishes are observed at the
        end of the step in progress, where the step event is re-armed."""
        end_s, finished = self.engine.settle(now_s)
        self.pending_finished = finished
        if end_s != self.armed_s:
            self.armed_s = end_s
            if self.rearm is not None:
                self.rearm(self)

    def on_dispatch(self, route: RouteRequest) -> None:
        self.load.on_dispatch(route)
        self._mirror_in_flight()
        self.kv_usage = self.load.kv_usage(self._scraped_kv_usage, self.kv_capacity_tokens)

    def on_complete(self, route: RouteRequest) -> None:
        self.load.on_complete(route)
        self._mirror_in_flight()

    def _mirror_in_flight(self) -> None:
        """Copy the burst-corrected in-flight figures into the plain attributes routing
        reads (`EndpointView`)."""
        load = self.load
        self.max_priority_in_flight = load.max_priority_in_flight
        self.num_in_flight = load.num_in_flight
        self.num_in_flight_tokens = load.num_in_flight_tokens
        self.num_waiting = load.waiting(self._scraped_waiting, self.num_running)

    def gpu_hours(self, end_s: float) -> float:
        """GPU-hours billed from provisioning to stop (or ``end_s``)."""
        stop = min(self.stopped_s, end_s)
        return max(0.0, stop - self.provisioned_s) * self.gpus / 3600.0
