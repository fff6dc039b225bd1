"""Cost and SLO scorers: cheapest capacity that still meets the request's latency class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from gpufleet.routing.base import STRICT_PARAMS
from gpufleet.routing.load_scorers import lower_is_better
from gpufleet.types import EndpointView, RouteRequest


@dataclass
class CostScorer:
    """Lowest price per million tokens of throughput (the pool's $/h over its modelled
    tokens/s); endpoints of unknown cost score as the most expensive."""

    name: str = "cost-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        costs = [e.cost_usd_per_mtok for e in endpoints]
        known = [c for c in costs if c > 0]
        ceiling = max(known, default=1.0)
        return lower_is_better([c if c > 0 else ceiling for c in costs])


@dataclass
class SloHeadroomScorer:
    """Headroom of the predicted TTFT against the request's target.

    predicted TTFT = (tokens queued ahead + the prompt) / prefill throughput, with
    the queue estimated as the gateway's in-flight tokens plus ``waiting_tokens``
    per engine-queued request. score = 1 − predicted / target, clamped to [0, 1]:
    a replica that would miss the target scores 0. Without a target
    (``request.ttft_target_s`` or ``default_ttft_target_s``) or a throughput
    figure, every candidate scores 1.
    """

    default_ttft_target_s: float = 0.0
    waiting_tokens: float = 512.0
    name: str = "slo-headroom-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        target = request.ttft_target_s or self.default_ttft_target_s
        if target <= 0:
            return [1.0] * len(endpoints)
        scores = []
        for endpoint in endpoints:
            rate = endpoint.prefill_tokens_per_s
            if rate <= 0:
                scores.append(1.0)
                continue
            ahead = endpoint.num_waiting * self.waiting_tokens + request.prompt_tokens
            predicted_s = ahead / rate
            headroom = 1.0 - predicted_s / target
            scores.append(headroom if headroom > 0.0 else 0.0)
        return scores
