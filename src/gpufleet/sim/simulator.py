"""The fleet simulator: the gateway's routing and admission over engine models, on virtual time.

Algorithm (one event heap, `EventLoop`; no per-token events):

- **arrival** — the request is opened in the `RequestLog`; if its model's
  admission queue already holds requests it queues behind them (arrivals never
  overtake, as in the gateway), else the *same* ``RoutingProfile.decide`` the
  gateway runs picks among the model's replicas (`SimReplica`, burst-corrected
  load); no candidate → the `AdmissionQueue` (shed at its deadline, or at once
  when the queue is full or admission is off). The next arrival is pulled lazily
  from the workload iterator.
- **step** — one event per engine step, or per *decode run*, per busy
  replica: the outputs of what just ended are applied (first tokens,
  completions → ``on_complete`` hooks, queue pump), then the next step starts
  and its end is the replica's next event. When the next step is a plain
  decode of the whole batch (nothing waiting), ``EngineModel.start_decode_run``
  plans all the decode steps up to the first finish in one call, and the
  replica's next event is the end of that run. Anything that must see the
  engine in the middle of a run — a dispatch to it, a scrape, an abort —
  first settles the run up to that instant (the steps started by then are
  applied) and re-arms the replica's event at the end of the step in progress,
  so the outcome is exactly that of stepping one step at a time (tested:
  ``tests/unit/engine/test_engine_decode_run.py``,
  ``tests/unit/sim/test_simulator.py``). Idle replicas have no events; a
  dispatch to an idle replica schedules its step at once. A replica has one
  valid step event, at ``armed_s``; an event left behind by a re-arm is stale
  and ignored.
- **lifecycle** — replicas are provisioned with a cold start (initial fleet
  warm unless ``warm_start`` is off), spot replicas get Poisson interruptions
  with a notice window (drain, replacement, then stop: requests without a
  first token are routed again, streaming ones fail with cause
  ``spot-preemption``), and an `AutoscalePolicy` is evaluated on its interval.

Invariants: event time never decreases (`EventLoop`), every request is closed
exactly once (`RequestLog`), and with ``check_invariants`` every engine's KV
pool is checked after each step. Cost is Σ replica GPU-hours × pool price.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable, Iterator

from gpufleet.admission.queue import AdmissionQueue, Ticket
from gpufleet.config import FleetConfig, PluginConfig
from gpufleet.engine.request import EngineRequest
from gpufleet.engine.step_result import StepResult
from gpufleet.errors import ConfigError, RateLimited
from gpufleet.plan.catalog import Catalog
from gpufleet.routing.profile import RoutingProfile
from gpufleet.sim.arrival import SimArrival
from gpufleet.sim.autoscale import AutoscalePolicy, StaticPolicy
from gpufleet.sim.cluster import Deployment
from gpufleet.sim.errors import SimulationError
from gpufleet.sim.events import STALE, Event, EventLoop
from gpufleet.sim.options import SimOptions
from gpufleet.sim.records import RequestLog
from gpufleet.sim.replica import READY, STOPPED, SimReplica, VirtualClock
from gpufleet.sim.timeline import Timeline
from gpufleet.types import RouteRequest

_INF = float("inf")


def _seeded_profile(config: FleetConfig, seed: int) -> RoutingProfile:
    """The fleet's routing profile; a picker that draws at random (ties, two choices) and
    has no ``seed`` in fleet.yaml is seeded with the run's seed, so runs are reproducible."""
    name, profile = config.routing.profile, config.routing.active_profile()
    picker = profile.picker
    if "seed" not in picker.params:
        params = {**picker.params, "seed": seed}
        seeded = dataclasses.replace(
            profile, picker=PluginConfig(picker.name, picker.weight, params)
        )
        try:
            return RoutingProfile.from_config(name, seeded)
        except ConfigError:
            pass  # a picker without a seed parameter (deterministic): build it as configured
    return RoutingProfile.from_config(name, profile)


class _Live:
    """A request between arrival and close."""

    __slots__ = ("arrival", "cached", "contexts", "model", "replica", "rid", "route", "row")

    def __init__(self, row: int, arrival: SimArrival, model: str, route: RouteRequest) -> None:
        self.row = row
        self.rid = str(row)
        self.arrival = arrival
        self.model = model
        self.route = route
        self.replica: SimReplica | None = None
        self.contexts: list[object] = []
        self.cached = 0


class Simulator:
    """One run over one fleet (see the module doc); call `run` once."""

    def __init__(
        self,
        config: FleetConfig,
        catalog: Catalog,
        options: SimOptions,
        autoscale: AutoscalePolicy | None = None,
        decode_runs: bool = True,
    ) -> None:
        """``decode_runs`` False steps every engine step one at a time (the reference
        the decode runs are checked against; same results, slower)."""
        self.config = config
        self._decode_runs = decode_runs
        self.options = options
        self.deployments = Deployment.from_config(config, catalog)
        self.profile = _seeded_profile(config, options.seed)
        self.uses_prompt_text = self.profile.uses_prompt_text
        self._has_hooks = any(
            hasattr(w.scorer, "on_dispatch") or hasattr(w.scorer, "on_complete")
            for w in self.profile.scorers
        )
        self.autoscale: AutoscalePolicy = autoscale or StaticPolicy()
        self.models = [m.name for m in config.models]
        self._model_index = {name: i for i, name in enumerate(self.models)}
        self._names = config.model_names()
        self.classes = list(config.admission.classes)
        self._class_index = {name: i for i, name in enumerate(self.classes)}
        self.loop = EventLoop()
        self.clock = VirtualClock()
        self.log = RequestLog()
        self.replicas: list[SimReplica] = []
        self._by_model: dict[str, list[SimReplica]] = {m: [] for m in self.models}
        self._queues: dict[str, AdmissionQueue] = {}
        self._scrape_interval_s = config.scrape.interval_s
        self._num_provisioned: dict[str, int] = {}
        self._oldest_scrape: dict[str, float] = dict.fromkeys(self.models, -_INF)
        self._live: dict[str, _Live] = {}
        self._rng = random.Random(f"gpufleet-sim/{options.seed}")
        self.timeline = Timeline(options.bucket_s, [d.pool for d in self.deployments])
        self.num_spot_interruptions = 0
        self.notices_by_key: dict[str, int] = {d.key: 0 for d in self.deployments}
        """Spot notices so far per deployment key (a signal of the autoscaler)."""
        self.arrivals_by_model = dict.fromkeys(self.models, 0)
        self.num_kv_checks = 0
        self.end_s = 0.0

    # -- public -------------------------------------------------------------------------
    def run(
        self, arrivals: Iterator[SimArrival], on_progress: Callable[[float], None] | None = None
    ) -> None:
        """Simulate ``arrivals`` up to ``duration_s``, then drain (module doc)."""
        options = self.options
        for deployment in self.deployments:
            for _ in range(deployment.replicas):
                self._provision(0.0, deployment, warm=options.warm_start)
        self._arrivals = arrivals
        first = next(arrivals, None)
        if first is not None and first.arrival_s <= options.duration_s:
            self.loop.schedule(first.arrival_s, self._on_arrival, first)
        if self.autoscale.interval_s < float("inf"):
            self.loop.schedule(self.autoscale.interval_s, self._on_autoscale, None)
        self.loop.schedule(0.0, self._on_sample, None)
        until_s = options.duration_s + options.max_drain_s
        self.loop.run(until_s, on_progress)
        last_s = self.loop.last_s
        for replica in self.replicas:
            if replica.engine.in_decode_run:
                # Apply the steps started within the horizon; the last one's start (the
                # end of the one before) is an event stepping one at a time processes.
                last_s = max(last_s, replica.engine.last_step_start_s(until_s))
                replica.settle_run(until_s)
        self.end_s = max(options.duration_s, min(last_s, until_s))
        for live in list(self._live.values()):
            self._abort(live, self.end_s)
            self.log.fail(live.row, self.end_s, "unfinished")
        self._live.clear()
        for queue in self._queues.values():
            while (ticket := queue.pop()) is not None:
                self.log.shed(ticket.payload.row, self.end_s, "unfinished")  # type: ignore[attr-defined]
        for replica in self.replicas:
            if replica.state != STOPPED:
                replica.stopped_s = self.end_s

    # -- requests ---------------------------------------------------------------------
    def _on_arrival(self, now: float, arrival: SimArrival) -> Iterable[Event] | None:
        model = self._names.get(arrival.model or self.models[0])
        class_name = arrival.request_class or self.config.admission.default_class
        class_config = self.config.admission.classes.get(class_name)
        row = self.log.open(
            now,
            self._model_index.get(model, -1) if model else -1,
            self._class_index.get(class_name, -1),
            arrival.num_prompt_tokens,
        )
        self.timeline.arrival(now)
        nxt = next(self._arrivals, None)
        follow = (
            ((nxt.arrival_s, self._on_arrival, nxt),)
            if nxt is not None and nxt.arrival_s <= self.options.duration_s
            else None
        )
        if model is None:
            self.log.fail(row, now, "unknown-model")
            return follow
        self.arrivals_by_model[model] += 1
        priority = arrival.priority
        if priority is None:
            priority = class_config.priority if class_config else 0
        route = RouteRequest(
            model=model,
            session_key=arrival.session_id,
            prompt_tokens=arrival.num_prompt_tokens,
            max_tokens=arrival.max_tokens,
            prompt_text=arrival.prompt_text,
            priority=priority,
            ttft_target_s=class_config.ttft_target_s if class_config else 0.0,
        )
        self._admit(now, _Live(row, arrival, model, route))
        return follow

    def _admit(self, now: float, live: _Live) -> None:
        queue = self._queues.get(live.model)
        behind = queue is not None and len(queue) > 0
        if not behind:
            replica = self._route(now, live)
            if replica is not None:
                self._dispatch(now, live, replica)
                return
        self._enqueue(now, live)
        if behind:  # as the gateway's admission gate does: queue, then pump at once
            self._pump(now, live.model)  # (a higher band goes to the head, may go now)

    def _route(self, now: float, live: _Live) -> SimReplica | None:
        model = live.model
        candidates = self._by_model[model]
        self.clock.now_s = now
        # Every replica refreshes its scrape once it is an interval old; skip the pass
        # while even the oldest scrape is fresh (same outcome, no per-replica calls).
        if now - self._oldest_scrape[model] >= self._scrape_interval_s:
            oldest = _INF
            for replica in candidates:
                replica.refresh(now)
                if replica.scraped_at < oldest:
                    oldest = replica.scraped_at
            self._oldest_scrape[model] = oldest
        decision = self.profile.decide(live.route, candidates)
        return None if decision is None else decision.endpoint  # type: ignore[return-value]

    def _enqueue(self, now: float, live: _Live) -> None:
        admission = self.config.admission
        if not admission.enabled:
            self.log.shed(live.row, now, "no-capacity")
            return
        queue = self._queues.get(live.model)
        if queue is None:
            queue = AdmissionQueue(
                max_queue_len=admission.max_queue_len,
                ordering=admission.ordering,
                tenant_weights=dict(admission.tenant_weights),
            )
            self._queues[live.model] = queue
        class_name = live.arrival.request_class or admission.default_class
        class_config = admission.classes.get(class_name)
        deadline = now + min(
            class_config.deadline_s if class_config else admission.max_wait_s, admission.max_wait_s
        )
        ticket = Ticket(
            model=live.model,
            tenant=live.arrival.tenant or "default",
            priority=live.route.priority,
            tokens=live.route.prompt_tokens + live.route.max_tokens,
            enqueued_s=now,
            deadline_s=deadline,
            payload=live,
        )
        try:
            displaced = queue.enqueue(ticket)
        except RateLimited:
            self.log.shed(live.row, now, "queue-full")
            return
        if displaced is not None:  # the gateway answers it 429 at once
            self.log.shed(displaced.payload.row, now, "displaced")  # type: ignore[attr-defined]
        self.loop.schedule(deadline, self._on_deadline, ticket)

    def _on_deadline(self, now: float, ticket: Ticket) -> None:
        if ticket.done:
            return
        queue = self._queues[ticket.model]
        if queue.remove(ticket):
            live: _Live = ticket.payload  # type: ignore[assignment]
            self.log.shed(live.row, now, "deadline")

    def _pump(self, now: float, model: str) -> None:
        queue = self._queues.get(model)
        while queue is not None and len(queue):
            ticket = queue.peek()
            assert ticket is not None
            live: _Live = ticket.payload  # type: ignore[assignment]
            replica = self._route(now, live)
            if replica is None:
                return
            queue.pop()
            self._dispatch(now, live, replica)

    def _dispatch(self, now: float, live: _Live, replica: SimReplica) -> None:
        row = live.row
        log = self.log
        request = EngineRequest(live.rid, live.arrival.prompt, live.arrival.max_tokens, now)
        engine = replica.engine
        if engine.in_decode_run:
            replica.settle_run(now)  # the request joins at the end of the step in progress
        try:
            engine.add_request(request)
        except ValueError:
            log.fail(row, now, "too-long")
            return
        if log.dispatch_s[row] != log.dispatch_s[row]:  # NaN: first dispatch
            log.dispatch_s[row] = now
        log.replica_index[row] = replica.index
        live.replica = replica
        if self._has_hooks:
            live.contexts = self.profile.on_dispatch(live.route, replica)
        replica.on_dispatch(live.route)
        replica.live[live.rid] = live
        self._live[live.rid] = live
        if replica.armed_s == _INF:
            replica.armed_s = now
            self.loop.schedule(now, self._on_step, replica)

    def _rearm(self, replica: SimReplica) -> None:
        self.loop.schedule(replica.armed_s, self._on_step, replica)

    # -- engine steps -------------------------------------------------------------------
    def _on_step(self, now: float, replica: SimReplica) -> Iterable[Event] | None:
        if now != replica.armed_s:
            return STALE  # a settled decode run re-armed the replica earlier
        if replica.state == STOPPED:
            replica.armed_s = _INF
            return None
        engine = replica.engine
        if engine.in_decode_run:
            _, finished = engine.settle(now)
            if self.options.check_invariants:
                self._check_kv(replica)
            if finished:
                self._finished(now, replica, finished)
        else:
            result = replica.pending
            if result is not None:
                replica.pending = None
                self._apply(now, replica, result)
            if replica.pending_finished:
                finished = replica.pending_finished
                replica.pending_finished = ()
                self._finished(now, replica, finished)
        if not engine.has_work:
            replica.armed_s = _INF
            self._maybe_stop_drained(now, replica)
            return None
        if self._decode_runs:
            end = engine.start_decode_run(now)
            if end is not None:
                replica.armed_s = end
                return ((end, self._on_step, replica),)
        result = engine.step(now)
        if self.options.check_invariants:
            self._check_kv(replica)
        if not result.advanced:
            replica.armed_s = _INF  # nothing fits; the next dispatch or abort wakes it
            return None
        replica.pending = result
        end = now + result.duration_s
        replica.armed_s = end
        return ((end, self._on_step, replica),)

    def _apply(self, now: float, replica: SimReplica, result: StepResult) -> None:
        live_by_id = replica.live
        if result.cached_prompt_tokens and self._has_hooks:
            for rid, cached in result.cached_prompt_tokens:
                live_by_id[rid].cached = cached
        first = self.log.first_token_s
        for rid in result.first_token_ids:
            first[live_by_id[rid].row] = now
        if result.finished_ids:
            self._finished(now, replica, result.finished_ids)

    def _finished(self, now: float, replica: SimReplica, finished_ids: Iterable[str]) -> None:
        live_by_id = replica.live
        log = self.log
        profile = self.profile
        hooks = self._has_hooks
        for rid in finished_ids:
            live = live_by_id.pop(rid)
            del self._live[rid]
            log.finish(live.row, now, live.arrival.max_tokens)
            replica.on_complete(live.route)
            if hooks:
                profile.on_complete(replica, live.contexts, live.cached)
        queue = self._queues.get(replica.model)
        if queue is not None and len(queue):
            self._pump(now, replica.model)
        if replica.draining and not replica.num_in_flight:
            self._stop(now, replica)

    def _check_kv(self, replica: SimReplica) -> None:
        self.num_kv_checks += 1
        stats = replica.engine.stats
        usable = stats.num_gpu_blocks - 1
        if not 0 <= stats.num_free_blocks <= usable:
            raise SimulationError(f"{replica.id}: KV over-allocated ({stats.num_free_blocks} free)")

    # -- lifecycle ----------------------------------------------------------------------
    def _provision(self, now: float, deployment: Deployment, warm: bool = False) -> SimReplica:
        index = len(self.replicas)
        # Named as the gateway names a deployment's endpoints (pool/model/i, i counted per
        # deployment), so id-keyed routing (session hashing) places requests identically.
        number = self._num_provisioned[deployment.key] = (
            self._num_provisioned.get(deployment.key, -1) + 1
        )
        replica = SimReplica(
            index=index,
            replica_id=f"{deployment.key}/{number}",
            model=deployment.model,
            pool=deployment.pool,
            gpu=deployment.gpu,
            gpus=deployment.gpus_per_replica,
            price_usd_per_gpu_hour=deployment.price_usd_per_gpu_hour,
            engine=deployment.new_engine(),
            clock=self.clock,
            scrape_interval_s=self.config.scrape.interval_s,
            provisioned_s=now,
            prefill_tokens_per_s=deployment.prefill_tokens_per_s,
            rearm=self._rearm,
        )
        self.replicas.append(replica)
        self._oldest_scrape[deployment.model] = -_INF
        self._by_model[deployment.model].append(replica)
        delay = (
            0.0
            if warm
            else self.options.cold_start.seconds(
                deployment.weight_bytes_per_gpu, deployment.gpus_per_replica
            )
        )
        self.loop.schedule(now + delay, self._on_ready, (replica, deployment))
        return replica

    def _on_ready(self, now: float, payload: tuple[SimReplica, Deployment]) -> None:
        replica, deployment = payload
        if replica.state == STOPPED:
            return
        replica.state = READY
        replica.ready_s = now
        if deployment.capacity == "spot":
            policy = self.options.spot.get(deployment.pool, self.options.default_spot)
            if policy.interruptions_per_hour > 0:
                wait = self._rng.expovariate(policy.interruptions_per_hour / 3600.0)
                if now + wait <= self.options.duration_s:
                    self.loop.schedule(now + wait, self._on_notice, (replica, deployment))
        self._pump(now, replica.model)

    def _on_notice(self, now: float, payload: tuple[SimReplica, Deployment]) -> None:
        replica, deployment = payload
        if replica.state == STOPPED or replica.draining:
            return
        self.num_spot_interruptions += 1
        self.notices_by_key[deployment.key] += 1
        replica.under_notice = True
        replica.draining = True
        policy = self.options.spot.get(deployment.pool, self.options.default_spot)
        if policy.replace:
            self._provision(now, deployment)
        self.loop.schedule(now + policy.notice_s, self._on_terminate, replica)

    def _on_terminate(self, now: float, replica: SimReplica) -> None:
        if replica.state == STOPPED:
            return
        for live in list(replica.live.values()):
            self._abort(live, now)
            if self.log.first_token_s[live.row] != self.log.first_token_s[live.row]:
                self.log.num_retries[live.row] += 1
                self._admit(now, live)
            else:
                self.log.fail(live.row, now, "spot-preemption")
        self._stop(now, replica)

    def _abort(self, live: _Live, now: float) -> None:
        replica = live.replica
        if replica is None:
            return
        if replica.engine.in_decode_run:
            replica.settle_run(now)
        replica.engine.abort(live.rid)
        replica.live.pop(live.rid, None)
        self._live.pop(live.rid, None)
        replica.on_complete(live.route)
        live.replica = None

    def _stop(self, now: float, replica: SimReplica) -> None:
        if replica.engine.in_decode_run:
            replica.settle_run(now)
        replica.state = STOPPED
        replica.stopped_s = now
        replica.pending = None
        replica.pending_finished = ()
        self._by_model[replica.model].remove(replica)

    def _maybe_stop_drained(self, now: float, replica: SimReplica) -> None:
        if replica.draining and not replica.num_in_flight and replica.state != STOPPED:
            self._stop(now, replica)

    def _on_autoscale(self, now: float, _: None) -> Iterable[Event] | None:
        from gpufleet.sim.scaling import apply_autoscale

        apply_autoscale(self, now)
        nxt = now + self.autoscale.interval_s
        return ((nxt, self._on_autoscale, None),) if nxt <= self.options.duration_s else None

    def _on_sample(self, now: float, _: None) -> Iterable[Event] | None:
        queued = sum(len(q) for q in self._queues.values())
        self.timeline.sample(now, self.replicas, queued)
        nxt = now + self.options.bucket_s
        return ((nxt, self._on_sample, None),) if nxt <= self.options.duration_s else None
