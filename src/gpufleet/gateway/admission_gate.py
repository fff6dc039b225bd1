"""Holds requests in per-model admission queues while no replica can take them.

A request waits here when routing finds no candidate (every replica saturated,
starting, draining, or none yet: scale-from-zero) and while others of its model
already wait (arrivals never overtake the queue). The queue is pumped when
capacity may have appeared — on an arrival, when a request completes, and on
a short tick that also sheds expired tickets with 429 + Retry-After. Each pump
dispatches one ticket and schedules the next pump after the woken request has
registered its dispatch, so the load the next routing decision sees is current.
A head that found no replica is not routed again until the fleet's load version
changes (a scrape, a dispatch, a completion, a health change): under a flood
most pumps would otherwise repeat the same failed decision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import cast

from gpufleet.admission.queue import AdmissionQueue, Ticket
from gpufleet.config import AdmissionConfig
from gpufleet.errors import CapacityError, NoCapacity, RateLimited
from gpufleet.types import RouteRequest, RoutingDecision

Router = Callable[[RouteRequest], RoutingDecision | None]
HasRoutable = Callable[[str], bool]
LoadVersion = Callable[[str], Hashable]
TICK_S = 0.02


class AdmissionGate:
    def __init__(
        self,
        config: AdmissionConfig,
        route: Router,
        has_routable: HasRoutable,
        load_version: LoadVersion,
        on_shed: Callable[[], None] = lambda: None,
    ):
        self.config = config
        self._on_shed = on_shed
        self._route = route
        self._has_routable = has_routable
        self._load_version = load_version
        self._blocked: dict[str, tuple[Ticket, Hashable]] = {}
        """model → the head that found no replica, and the load version it saw."""
        self.queues: dict[str, AdmissionQueue] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._pump_scheduled: set[str] = set()

    def has_waiting(self, model: str) -> bool:
        queue = self.queues.get(model)
        return bool(queue is not None and len(queue))

    async def wait(self, request: RouteRequest, tenant: str, deadline_s: float) -> RoutingDecision:
        """Queue ``request`` until a replica can take it; raises ``RateLimited`` when shed."""
        queue = self.queues.get(request.model)
        if queue is None:
            queue = AdmissionQueue(
                max_queue_len=self.config.max_queue_len,
                ordering=self.config.ordering,
                tenant_weights=dict(self.config.tenant_weights),
            )
            self.queues[request.model] = queue
        now = time.monotonic()
        future: asyncio.Future[RoutingDecision] = asyncio.get_running_loop().create_future()
        ticket = Ticket(
            model=request.model,
            tenant=tenant,
            priority=request.priority,
            tokens=request.prompt_tokens + request.max_tokens,
            enqueued_s=now,
            deadline_s=min(deadline_s, now + self.config.max_wait_s),
            payload=(request, future),
        )
        displaced = queue.enqueue(ticket)
        if displaced is not None:
            self._shed(displaced, self._displaced_error(displaced, now))
        self._ensure_ticker()
        self.pump(request.model)
        try:
            return await future
        finally:
            if not ticket.done:
                queue.remove(ticket)

    def pump(self, model: str) -> None:
        """Dispatch the next ticket of ``model`` if a replica can take it now."""
        self._pump_scheduled.discard(model)
        queue = self.queues.get(model)
        if queue is None:
            return
        while True:
            ticket = queue.peek()
            if ticket is None:
                return
            request, future = _payload(ticket)
            if future.done():  # client gone
                queue.pop()
                continue
            version = self._load_version(model)
            blocked = self._blocked.get(model)
            if blocked is not None and blocked[0] is ticket and blocked[1] == version:
                return  # nothing a filter reads has changed since it found no replica
            decision = self._route(request)
            if decision is None:
                self._blocked[model] = (ticket, version)
                return
            queue.pop()
            future.set_result(decision)
            if len(queue) and model not in self._pump_scheduled:
                self._pump_scheduled.add(model)
                asyncio.get_running_loop().call_soon(self.pump, model)
            return

    def pump_all(self) -> None:
        for model in list(self.queues):
            self.pump(model)

    def depth(self) -> dict[tuple[str, int], int]:
        return {
            (model, priority): count
            for model, queue in self.queues.items()
            for priority, count in queue.depth_by_priority().items()
        }

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while any(len(q) for q in self.queues.values()):
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            for queue in self.queues.values():
                for ticket in queue.expire(now):
                    self._shed(ticket, self._shed_error(ticket, now))
            self.pump_all()

    def _shed(self, ticket: Ticket, error: CapacityError) -> None:
        _, future = _payload(ticket)
        if not future.done():
            self._on_shed()
            future.set_exception(error)

    def _displaced_error(self, ticket: Ticket, now_s: float) -> RateLimited:
        return RateLimited(
            f"model `{ticket.model}` is saturated and its queue is full: this request was "
            f"displaced by a higher-priority one after {now_s - ticket.enqueued_s:.1f} s in "
            "the queue; retry later",
            retry_after_s=1.0,
        )

    def _shed_error(self, ticket: Ticket, now_s: float) -> CapacityError:
        waited_s = now_s - ticket.enqueued_s
        if not self._has_routable(ticket.model):
            return NoCapacity(
                f"no replica of model `{ticket.model}` became ready within {waited_s:.1f} s; "
                "retry later",
                retry_after_s=max(1.0, waited_s),
            )
        return RateLimited(
            f"model `{ticket.model}` is saturated: the request could not start within its "
            f"deadline ({waited_s:.1f} s in the queue); retry later",
            retry_after_s=max(1.0, waited_s),
        )

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()


def _payload(ticket: Ticket) -> tuple[RouteRequest, asyncio.Future[RoutingDecision]]:
    return cast(tuple[RouteRequest, "asyncio.Future[RoutingDecision]"], ticket.payload)
