"""Load scorers: prefer the less loaded candidate, by one signal each.

Each normalises its signal across the candidates (min-max): the least
loaded scores 1, the most loaded 0, all equal → all 1. Loads are the
burst-corrected values of ``EndpointView`` (scraped, plus the gateway's own
dispatches since the scrape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from gpufleet.routing.base import STRICT_PARAMS
from gpufleet.types import EndpointView, RouteRequest


def lower_is_better(values: Sequence[float]) -> list[float]:
    """Min-max normalise so that the lowest value scores 1 and the highest 0."""
    if not values:
        return []
    low, high = min(values), max(values)
    if high <= low:
        return [1.0] * len(values)
    span = high - low
    return [(high - v) / span for v in values]


@dataclass
class QueueDepthScorer:
    """Fewest requests waiting in the engine's queue (vllm:num_requests_waiting)."""

    name: str = "queue-depth-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        return lower_is_better([e.num_waiting for e in endpoints])


@dataclass
class KvCacheUtilizationScorer:
    """Most free KV cache: 1 − kv_cache_usage_perc (absolute, not normalised)."""

    name: str = "kv-cache-utilization-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        return [1.0 - e.kv_usage for e in endpoints]


@dataclass
class RunningRequestsScorer:
    """Fewest requests in the engine's running batch."""

    name: str = "running-requests-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        return lower_is_better([e.num_running for e in endpoints])


@dataclass
class InFlightTokensScorer:
    """Fewest estimated tokens (prompt + output) in flight from this gateway."""

    name: str = "in-flight-tokens-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        return lower_is_better([float(e.num_in_flight_tokens) for e in endpoints])


@dataclass
class LeastLoadScorer:
    """Fewest requests in the engine (waiting + running), burst-corrected.

    ``waiting_weight`` counts a queued request as that many running ones: a queue
    costs TTFT, a running request costs a little ITL.
    """

    waiting_weight: float = 4.0
    name: str = "least-load-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        weight = self.waiting_weight
        return lower_is_better([weight * e.num_waiting + e.num_running for e in endpoints])


def load_of(endpoint: EndpointView) -> float:
    """The load figure guards compare: engine requests, burst-corrected."""
    return endpoint.num_waiting + endpoint.num_running
