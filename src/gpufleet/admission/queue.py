"""A model's admission queue: priority bands, token-weighted fairness, deadlines. Pure.

Order of dispatch:

1. **Priority band** first: a higher band is always served before a lower one.
2. **Tenants within a band** share by tokens, not requests (start-time fair
   queuing): each tenant has a virtual finish time; its next ticket of
   ``tokens`` tokens starts at that time (at the band's virtual time when the
   tenant was idle) and finishes at ``start + tokens / w`` for weight ``w``;
   the ticket with the smallest finish goes next and the band's virtual time
   advances to its start. Over a long backlog each tenant
   receives tokens in proportion to its weight, whatever its request sizes.
3. **Within a tenant**: FCFS (arrival order) or EDF (earliest deadline).

Bounds: at most ``max_queue_len`` tickets per model. A ticket arriving at a
full queue displaces the ticket that would be dispatched last in the lowest band
below its own (``enqueue`` returns it; the caller answers it 429), so a flood of
low-priority work can never lock high-priority requests out; with no lower band
queued the arrival itself is refused (``RateLimited``). A ticket whose deadline
passes is shed by ``expire`` (the caller answers 429 with Retry-After). Time is
an argument everywhere.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Literal

from gpufleet.errors import RateLimited


@dataclass(eq=False)
class Ticket:
    """One queued request. ``payload`` is the caller's (e.g. a future); never inspected."""

    model: str
    tenant: str
    priority: int
    tokens: int
    enqueued_s: float
    deadline_s: float
    payload: object = None
    virtual_finish: float = 0.0
    sequence: int = 0
    done: bool = False


@dataclass
class _TenantQueue:
    weight: float
    last_finish: float = 0.0
    heap: list[tuple[float, int, Ticket]] = field(default_factory=list)


@dataclass
class _Band:
    virtual_time: float = 0.0
    tenants: dict[str, _TenantQueue] = field(default_factory=dict)


@dataclass
class AdmissionQueue:
    max_queue_len: int = 1024
    ordering: Literal["fcfs", "edf"] = "fcfs"
    tenant_weights: dict[str, float] = field(default_factory=dict)
    default_weight: float = 1.0
    _bands: dict[int, _Band] = field(default_factory=dict, init=False)
    _size: int = field(default=0, init=False)
    _deadlines: list[tuple[float, int, Ticket]] = field(default_factory=list, init=False)
    """Every queued ticket by deadline (and dispatched ones until compacted): `expire`."""
    _sequence: itertools.count[int] = field(default_factory=itertools.count, init=False)

    def __len__(self) -> int:
        return self._size

    def depth_by_priority(self) -> dict[int, int]:
        return {
            priority: sum(len(q.heap) for q in band.tenants.values())
            for priority, band in self._bands.items()
        }

    def enqueue(self, ticket: Ticket) -> Ticket | None:
        """Queue ``ticket``; returns the lower-priority ticket it displaced from a full queue.

        Raises ``RateLimited`` when the queue is full of tickets of its band or above.
        """
        displaced = None
        if self._size >= self.max_queue_len:
            displaced = self._last_below(ticket.priority)
            if displaced is None:
                raise RateLimited(
                    f"the queue for model `{ticket.model}` is full ({self.max_queue_len} requests)",
                    retry_after_s=1.0,
                )
            self.remove(displaced)
        band = self._bands.setdefault(ticket.priority, _Band())
        tenant = band.tenants.get(ticket.tenant)
        if tenant is None:
            weight = self.tenant_weights.get(ticket.tenant, self.default_weight)
            tenant = _TenantQueue(weight=weight, last_finish=band.virtual_time)
            band.tenants[ticket.tenant] = tenant
        if not tenant.heap:
            # A tenant that becomes backlogged starts at the band's virtual time:
            # no credit for having been idle, no penalty for having been served.
            tenant.last_finish = max(tenant.last_finish, band.virtual_time)
        ticket.sequence = next(self._sequence)
        key = ticket.deadline_s if self.ordering == "edf" else float(ticket.sequence)
        heapq.heappush(tenant.heap, (key, ticket.sequence, ticket))
        self._size += 1
        deadlines = self._deadlines
        if len(deadlines) > 2 * self._size + 64:  # mostly tickets gone: rebuild
            deadlines[:] = [entry for entry in deadlines if not entry[2].done]
            heapq.heapify(deadlines)
        heapq.heappush(deadlines, (ticket.deadline_s, ticket.sequence, ticket))
        return displaced

    def _last_below(self, priority: int) -> Ticket | None:
        """The ticket of the lowest queued band under ``priority`` that is due last."""
        for band_priority in sorted(self._bands):
            if band_priority >= priority:
                return None
            entries = [e for q in self._bands[band_priority].tenants.values() for e in q.heap]
            if entries:
                return max(entries, key=lambda entry: (entry[0], entry[1]))[2]
        return None

    def peek(self) -> Ticket | None:
        """The ticket that would be dispatched next, without removing it."""
        choice = self._choose()
        return choice[2] if choice is not None else None

    def pop(self) -> Ticket | None:
        """Remove and return the next ticket in dispatch order."""
        choice = self._choose()
        if choice is None:
            return None
        band, tenant, ticket, start = choice
        heapq.heappop(tenant.heap)
        tenant.last_finish = start + max(ticket.tokens, 1) / tenant.weight
        band.virtual_time = start
        ticket.done = True
        self._size -= 1
        return ticket

    def remove(self, ticket: Ticket) -> bool:
        """Take a ticket out (client gone); O(queue of its tenant)."""
        band = self._bands.get(ticket.priority)
        tenant = band.tenants.get(ticket.tenant) if band else None
        if tenant is None or ticket.done:
            return False
        for i, (_, _, queued) in enumerate(tenant.heap):
            if queued is ticket:
                tenant.heap[i] = tenant.heap[-1]
                tenant.heap.pop()
                heapq.heapify(tenant.heap)
                ticket.done = True
                self._size -= 1
                return True
        return False

    def expire(self, now_s: float) -> list[Ticket]:
        """Remove and return every ticket whose deadline has passed (earliest first)."""
        expired = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now_s:
            ticket = heapq.heappop(deadlines)[2]
            if not ticket.done:
                self.remove(ticket)
                expired.append(ticket)
        return expired

    def _choose(self) -> tuple[_Band, _TenantQueue, Ticket, float] | None:
        for priority in sorted(self._bands, reverse=True):
            band = self._bands[priority]
            best: tuple[float, int, _TenantQueue, Ticket, float] | None = None
            for tenant in band.tenants.values():
                if not tenant.heap:
                    continue
                ticket = tenant.heap[0][2]
                start = tenant.last_finish
                finish = start + max(ticket.tokens, 1) / tenant.weight
                if best is None or (finish, ticket.sequence) < (best[0], best[1]):
                    best = (finish, ticket.sequence, tenant, ticket, start)
            if best is not None:
                return band, best[2], best[3], best[4]
        return None
