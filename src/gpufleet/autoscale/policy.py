"""The SLO autoscaler: replicas per model and pool from load, forecast and price.

Algorithm, every ``interval_s`` for each model (docs/autoscale.md):

1. **demand** (requests/s) = max(forecast, in-flight equivalent) + queued / ``queue_drain_s``:
   the arrival rate (from the cumulative counter) is smoothed by
   `RateForecaster` and forecast at now + ``cold_start_s`` + ``interval_s``,
   so capacity ordered now is ready when that load arrives; the in-flight
   equivalent converts each deployment's requests in flight at its
   ``max_in_flight`` into its rate (it exceeds the forecast when replicas
   are slower than estimated); the gateway's queue must drain in
   ``queue_drain_s``.
2. **usable capacity** = Σ active replicas × capacity × ``target_utilization``,
   counting ready and starting replicas (draining ones — scale-down or under
   a spot notice — are lost), and not counting starting replicas of
   unhealthy spot pools (`SpotHealth`).
3. **scale up** when demand > usable capacity, or from zero when
   anything arrived or is queued: `allocate` the demand cheapest-first
   (healthy spot, on-demand, unhealthy spot); a deployment keeps at least its
   ready replicas (make before break).
4. **scale down** when the *highest* demand seen over ``scale_down_delay_s``
   fits fewer replicas with `TOLERANCE` to spare (the most expensive capacity
   goes first), no replica of the model is starting, and the
   model has not scaled up for ``cooldown_s``; a model with no arrival, no
   request in flight and none queued for ``idle_to_zero_s`` goes to its
   minimum (zero unless deployments set ``min_replicas``). Otherwise **hold**.
5. **budget**: `trim_to_budget` removes the most expensive capacity until the
   fleet's desired price ≤ ``budget_usd_per_hour``; min/max per deployment
   always hold.

Every deployment gets a `DeploymentDecision` whose reason carries the figures.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gpufleet.autoscale.allocation import Slot, allocate, cost_order, trim_to_budget
from gpufleet.autoscale.capacity import (
    ModelTargets,
    ReplicaCapacity,
    model_targets,
    replica_capacities,
)
from gpufleet.autoscale.decision import DeploymentDecision, ScalingDecision
from gpufleet.autoscale.forecast import RateForecaster
from gpufleet.autoscale.signals import DeploymentSignals, FleetSignals
from gpufleet.autoscale.spot import SpotHealth
from gpufleet.config import AutoscaleConfig, FleetConfig
from gpufleet.plan.catalog import Catalog

TOLERANCE = 0.05
"""Scale down only to replicas whose usable capacity exceeds the peak demand by this fraction,
so that the next noisy sample does not scale straight back up (deadband)."""
LEVEL_TAU_INTERVALS, TREND_TAU_INTERVALS = 4.0, 10.0
"""Smoothing time constants of the rate's level and trend, in decision intervals ..."""
MIN_ARRIVALS = 500.0
"""... and at least this many arrivals in the level's time constant (Poisson noise ≈ 3%)."""
MAX_TREND_GAIN = 0.5
"""The trend adds at most this fraction of the level (Holt overshoots after a load step)."""
STUCK_FACTOR = 2.0
"""A spot replica starting for longer than this × ``cold_start_s`` marks its pool short."""


@dataclass
class _ModelState:
    forecaster: RateForecaster
    targets: ModelTargets
    last_count: int | None = None
    last_s: float | None = None
    last_active_s: float | None = None
    first_s: float | None = None
    last_up_s: float = -float("inf")
    window: deque[tuple[float, float]] = field(default_factory=deque)


@dataclass(frozen=True, slots=True)
class _Load:
    now_s: float
    demand: float
    forecast: float
    in_flight_rate: float
    in_flight: int
    queued: int
    peak: float


class SloAutoscaler:
    """Satisfies ``AutoscalePolicy``; see the module doc.

    ``SloAutoscaler(fleet.autoscale, fleet, catalog)``: ``catalog`` (optional)
    lets the planner estimate each deployment's capacity at the SLO;
    ``capacities`` (tests, calibration) overrides the estimate per key.
    """

    def __init__(
        self,
        settings: AutoscaleConfig,
        fleet: FleetConfig,
        catalog: Catalog | None = None,
        *,
        capacities: Mapping[str, ReplicaCapacity] | None = None,
    ) -> None:
        self.settings = settings
        caps = {**replica_capacities(settings, fleet, catalog), **(capacities or {})}
        self.capacities: Mapping[str, ReplicaCapacity] = caps
        util = settings.target_utilization
        self.slots: list[Slot] = [
            Slot(
                key=f"{pool.name}/{d.model}",
                model=d.model,
                pool=pool.name,
                spot=pool.capacity == "spot",
                usd_per_hour=pool.price_usd_per_gpu_hour * pool.gpus_per_replica,
                usable_per_s=caps[f"{pool.name}/{d.model}"].requests_per_s * util,
                min_replicas=d.min_replicas,
                max_replicas=d.max_replicas,
            )
            for pool in fleet.pools
            for d in pool.deployments
        ]
        self._models = {
            m.name: _ModelState(
                RateForecaster(
                    LEVEL_TAU_INTERVALS * settings.interval_s,
                    TREND_TAU_INTERVALS * settings.interval_s,
                    MIN_ARRIVALS,
                ),
                model_targets(settings, m.name),
            )
            for m in fleet.models
            if any(s.model == m.name for s in self.slots)
        }
        self._spot = SpotHealth(
            {s.pool for s in self.slots if s.spot},
            settings.spot_notices_to_fallback,
            settings.spot_backoff_s,
            STUCK_FACTOR * settings.cold_start_s,
        )
        self.last_decision: ScalingDecision | None = None

    @property
    def interval_s(self) -> float:
        return self.settings.interval_s

    def desired_replicas(self, signals: FleetSignals) -> Mapping[str, int]:
        return self.decide(signals).replicas

    def decide(self, signals: FleetSignals) -> ScalingDecision:
        """Desired replicas and the reason for every deployment (module doc)."""
        unhealthy = self._spot.update(signals)
        decisions: dict[str, DeploymentDecision] = {}
        for model, state in self._models.items():
            slots = [s for s in self.slots if s.model == model]
            decisions.update(self._decide_model(signals, state, slots, unhealthy))
        cost = sum(decisions[s.key].desired * s.usd_per_hour for s in self.slots)
        budget = self.settings.budget_usd_per_hour
        if budget is not None and cost > budget:
            desired = {key: d.desired for key, d in decisions.items()}
            removed = trim_to_budget(self.slots, desired, budget)
            for key, n in removed.items():
                d = decisions[key]
                why = f"{d.reason}; budget cap ${budget:.2f}/h: {n} fewer"
                decisions[key] = DeploymentDecision(
                    key, d.model, d.pool, d.current, desired[key], why
                )
            cost = sum(desired[s.key] * s.usd_per_hour for s in self.slots)
        self.last_decision = ScalingDecision(signals.now_s, decisions, cost)
        return self.last_decision

    # -- one model ----------------------------------------------------------------------
    def _decide_model(
        self,
        signals: FleetSignals,
        state: _ModelState,
        slots: list[Slot],
        unhealthy: Mapping[str, str],
    ) -> dict[str, DeploymentDecision]:
        now = signals.now_s
        settings = self.settings
        empty = DeploymentSignals(slots[0].model, "", 0, 0, 0, 0, 0.0, 0.0, 0.0)
        sig = {s.key: signals.deployments.get(s.key, empty) for s in slots}
        current = {s.key: sig[s.key].num_active for s in slots}
        ready = {s.key: sig[s.key].num_ready for s in slots}
        # starting replicas of an unhealthy spot pool are not counted on
        counted = {s.key: ready[s.key] if s.pool in unhealthy else current[s.key] for s in slots}
        load = self._load(signals, state, slots, sig)
        usable = sum(counted[s.key] * s.usable_per_s for s in slots)
        total = sum(current.values())
        horizon = settings.cold_start_s + settings.interval_s
        summary = (
            f"demand {load.demand:.1f} req/s (forecast {load.forecast:.1f} at t+{horizon:.0f} s, "
            f"{load.in_flight} in flight ≈ {load.in_flight_rate:.1f} req/s, {load.queued} queued)"
        )
        idle_s = now - (state.last_active_s if state.last_active_s is not None else now)
        targets = state.targets
        if targets.idle_to_zero_s is not None and idle_s >= targets.idle_to_zero_s:
            desired = {s.key: s.min_replicas for s in slots}
            why = f"idle for {idle_s:.0f} s ≥ {targets.idle_to_zero_s:.0f} s: scale to minimum"
            return self._decisions(slots, current, desired, lambda _: why)
        up = load.demand > usable + 1e-9 or (total == 0 and load.demand > 0)
        if up or counted != current:
            alloc = allocate(
                slots,
                load.demand,
                unhealthy=unhealthy,
                ready=ready,
                max_spot_fraction=settings.max_spot_fraction,
                floor=1,
            )
            # make before break: ready replicas stay while new ones start
            desired = {k: max(n, ready[k]) for k, n in alloc.items()}
            if sum(desired.values()) > total:
                state.last_up_s = now
            verb = f"> usable {usable:.1f} req/s" if up else "spot pool unhealthy"
            return self._decisions(
                slots, current, desired,
                lambda s: f"{summary} {verb}; {self._describe(s, unhealthy)}",
            )  # fmt: skip
        return self._down_or_hold(state, slots, current, sig, load, summary, unhealthy)

    def _down_or_hold(
        self,
        state: _ModelState,
        slots: list[Slot],
        current: dict[str, int],
        sig: Mapping[str, DeploymentSignals],
        load: _Load,
        summary: str,
        unhealthy: Mapping[str, str],
    ) -> dict[str, DeploymentDecision]:
        """Remove the most expensive replicas while the rest still covers the peak demand."""
        settings = self.settings
        desired = dict(current)
        usable = sum(current[s.key] * s.usable_per_s for s in slots)
        for slot in reversed(cost_order(slots, unhealthy)):
            while (
                desired[slot.key] > slot.min_replicas
                and sum(desired.values()) > 1
                and (usable - slot.usable_per_s) * (1 - TOLERANCE) >= load.peak - 1e-9
            ):
                desired[slot.key] -= 1
                usable -= slot.usable_per_s
        for slot in slots:  # max_replicas lowered, or min_replicas raised, since
            ceiling = slot.max_replicas if slot.max_replicas is not None else desired[slot.key]
            desired[slot.key] = max(slot.min_replicas, min(desired[slot.key], ceiling))
        window = f"peak demand {load.peak:.1f} req/s over {settings.scale_down_delay_s:.0f} s"
        if desired == current:
            why = f"hold: {summary}; {window} needs these replicas"
            return self._decisions(slots, current, current, lambda _: why)
        blockers = []
        if load.now_s - state.last_up_s < settings.cooldown_s:
            blockers.append(f"cooldown {settings.cooldown_s:.0f} s after a scale-up")
        if any(sig[s.key].num_starting for s in slots):
            blockers.append("replicas still starting")
        if state.first_s is not None and load.now_s - state.first_s < settings.scale_down_delay_s:
            blockers.append("the demand window is not full yet")
        if blockers and all(desired[k] <= current[k] for k in current):
            why = f"hold: {summary}; {window} fits fewer, but {' and '.join(blockers)}"
            return self._decisions(slots, current, current, lambda _: why)
        return self._decisions(
            slots, current, desired,
            lambda s: f"{summary}; {window} fits fewer; {self._describe(s, unhealthy)}",
        )  # fmt: skip

    def _load(
        self,
        signals: FleetSignals,
        state: _ModelState,
        slots: list[Slot],
        sig: Mapping[str, DeploymentSignals],
    ) -> _Load:
        now, model = signals.now_s, slots[0].model
        rate: float | None = None
        counter = signals.num_arrivals_total_by_model.get(model)
        if counter is not None:
            if state.last_count is not None and state.last_s is not None and now > state.last_s:
                rate = max(0, counter - state.last_count) / (now - state.last_s)
            state.last_count, state.last_s = counter, now
        else:
            rate = signals.arrivals_per_s_by_model.get(model)
            if rate is None and len(self._models) == 1:
                rate = signals.arrivals_per_s_by_model.get("*")
        if state.last_active_s is None or state.first_s is None:
            state.last_active_s = state.first_s = now
        forecaster = state.forecaster
        if rate is not None:
            forecaster.observe(now, rate)
        horizon = self.settings.cold_start_s + self.settings.interval_s
        level = forecaster.level
        forecast = min(max(level, forecaster.forecast(horizon)), level * (1 + MAX_TREND_GAIN))
        in_flight = sum(sig[s.key].num_in_flight for s in slots)
        in_flight_rate = 0.0
        for s in slots:
            cap = self.capacities[s.key]
            if cap.max_in_flight > 0:
                in_flight_rate += sig[s.key].num_in_flight * cap.requests_per_s / cap.max_in_flight
        queued = signals.queued_by_model.get(model, 0)
        if (rate or 0) > 0 or in_flight or queued:
            state.last_active_s = now
        demand = max(forecast, in_flight_rate) + queued / self.settings.queue_drain_s
        window = state.window
        window.append((now, demand))
        while window and window[0][0] < now - self.settings.scale_down_delay_s:
            window.popleft()
        peak = max(d for _, d in window)
        return _Load(now, demand, forecast, in_flight_rate, in_flight, queued, peak)

    # -- reasons ------------------------------------------------------------------------
    def _describe(self, slot: Slot, unhealthy: Mapping[str, str]) -> str:
        kind = "spot" if slot.spot else "on-demand"
        text = (
            f"{slot.pool} ({kind}, ${slot.usd_per_hour:.2f}/h) serves "
            f"{slot.usable_per_s:.1f} req/s per replica"
        )
        if slot.pool in unhealthy:
            text += f"; spot pool unhealthy: {unhealthy[slot.pool]}"
        return text

    @staticmethod
    def _decisions(
        slots: list[Slot],
        current: Mapping[str, int],
        desired: Mapping[str, int],
        reason: Callable[[Slot], str],
    ) -> dict[str, DeploymentDecision]:
        return {
            s.key: DeploymentDecision(
                s.key, s.model, s.pool, current[s.key], desired[s.key], reason(s)
            )
            for s in slots
        }
