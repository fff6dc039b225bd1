"""Filters: narrow the candidate endpoints of a request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from gpufleet.routing.base import STRICT_PARAMS
from gpufleet.types import EndpointView, RouteRequest


@dataclass
class HealthyFilter:
    """Keeps endpoints that are healthy and not draining (``routable``)."""

    name: str = "healthy-filter"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def filter(
        self, request: RouteRequest, endpoints: Sequence[EndpointView]
    ) -> Sequence[EndpointView]:
        return [e for e in endpoints if e.routable]


@dataclass
class ModelFilter:
    """Keeps endpoints serving the request's model and, when asked for, its LoRA adapter.

    ``allow_adapter_load``: also keep endpoints that serve the base model but have
    not loaded the adapter (engines with runtime LoRA loading can load it).
    """

    allow_adapter_load: bool = False
    name: str = "model-filter"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def filter(
        self, request: RouteRequest, endpoints: Sequence[EndpointView]
    ) -> Sequence[EndpointView]:
        model = request.model
        matching = [e for e in endpoints if model in e.models]
        adapter = request.adapter
        if adapter is None:
            return matching
        with_adapter = [e for e in matching if adapter in e.adapters]
        if with_adapter or not self.allow_adapter_load:
            return with_adapter
        return matching


@dataclass
class GpuClassFilter:
    """Keeps endpoints whose GPU type is in ``gpus`` (e.g. only H100/H200 for a model)."""

    gpus: tuple[str, ...] = ()
    name: str = "gpu-class-filter"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def filter(
        self, request: RouteRequest, endpoints: Sequence[EndpointView]
    ) -> Sequence[EndpointView]:
        if not self.gpus:
            return endpoints
        return [e for e in endpoints if e.gpu in self.gpus]


@dataclass
class SaturationFilter:
    """Drops saturated endpoints, with headroom reserved for higher priority bands.

    A request of priority band ``p`` sees the limits scaled between the low band's and
    the top band's: ``f = clamp(p / top_priority, 0, 1)``, waiting limit
    ``low_max_waiting + f × (max_waiting − low_max_waiting)``, KV limit likewise between
    ``low_max_kv_usage`` and ``max_kv_usage``. So under overload batch traffic (band 0)
    stops being dispatched while the engines still have queue and KV room, that room goes
    to interactive traffic (band ≥ ``top_priority``), and the excess waits in the
    gateway's priority-ordered admission queue instead of the engines' FCFS queues (where
    it would also cause preemptions). When every candidate is saturated for the request,
    the set comes back empty and the request waits in that queue.

    ``low_max_in_flight`` / ``max_in_flight`` (default unlimited) cap the requests this
    gateway has in flight on a replica, scaled the same way, **while a higher band than
    the request's has requests in flight** on any candidate; otherwise every band gets
    ``max_in_flight``. A cap on the low band bounds how much prefill and decode work batch
    traffic adds to every engine step, which is what an interactive request's TTFT waits
    behind under a flood; and when no interactive traffic is there, batch work fills the
    fleet.
    """

    max_waiting: float = 8.0
    max_kv_usage: float = 0.95
    low_max_waiting: float = 0.0
    low_max_kv_usage: float = 0.8
    max_in_flight: float = float("inf")
    low_max_in_flight: float = float("inf")
    top_priority: int = 10
    name: str = "saturation-filter"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def filter(
        self, request: RouteRequest, endpoints: Sequence[EndpointView]
    ) -> Sequence[EndpointView]:
        share = min(1.0, max(0.0, request.priority / self.top_priority))
        waiting = self.low_max_waiting + share * (self.max_waiting - self.low_max_waiting)
        kv = self.low_max_kv_usage + share * (self.max_kv_usage - self.low_max_kv_usage)
        in_flight = self.max_in_flight
        if share < 1.0 and self.low_max_in_flight != in_flight:
            capped = self.low_max_in_flight
            if share > 0.0:  # 0 × inf, inf − inf: NaN
                capped += share * (in_flight - capped)
            # the scan over the candidates only when the band's cap differs
            if capped != in_flight and _outranked(request, endpoints):
                in_flight = capped
        return [
            e
            for e in endpoints
            if e.num_waiting <= waiting and e.kv_usage <= kv and e.num_in_flight < in_flight
        ]


def _outranked(request: RouteRequest, endpoints: Sequence[EndpointView]) -> bool:
    """Some request of a higher band than ``request``'s is in flight on a candidate."""
    priority = request.priority
    return any(e.max_priority_in_flight > priority for e in endpoints)
