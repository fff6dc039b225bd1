"""Values shared by the pure policies (routing, admission) and the I/O layers.

Routing reads endpoints through ``EndpointView``: a read-only protocol. The
live gateway passes its endpoint objects (nothing mutates them during a
synchronous routing call, so the call sees a consistent snapshot), the
simulator passes its own, tests pass the frozen ``Endpoint`` dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class EndpointHealth(StrEnum):
    HEALTHY = "healthy"
    STARTING = "starting"
    EJECTED = "ejected"
    UNHEALTHY = "unhealthy"


class EndpointView(Protocol):
    """What routing may know about one replica."""

    @property
    def id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def models(self) -> frozenset[str]: ...
    @property
    def adapters(self) -> frozenset[str]: ...
    @property
    def pool(self) -> str: ...
    @property
    def gpu(self) -> str: ...
    @property
    def price_usd_per_hour(self) -> float: ...
    @property
    def routable(self) -> bool:
        """Healthy and not draining: may receive new requests."""
        ...

    @property
    def draining(self) -> bool: ...
    @property
    def num_in_flight(self) -> int:
        """Requests the gateway has dispatched to it and not yet seen complete."""
        ...

    @property
    def num_waiting(self) -> float:
        """Engine-side waiting requests (scraped, burst-corrected); 0 when unknown."""
        ...

    @property
    def num_running(self) -> float: ...
    @property
    def kv_usage(self) -> float:
        """KV-cache usage in [0, 1]; 0 when unknown."""
        ...

    @property
    def metrics_age_s(self) -> float:
        """Seconds since the last successful scrape; inf when never scraped."""
        ...

    @property
    def num_in_flight_tokens(self) -> int:
        """Estimated prompt + output tokens of the requests in flight to it."""
        ...

    @property
    def max_priority_in_flight(self) -> float:
        """The highest priority band of the requests in flight to it; -inf when none."""
        ...

    @property
    def running_adapters(self) -> frozenset[str]:
        """LoRA adapters the engine reports loaded (running)."""
        ...

    @property
    def max_loras(self) -> int:
        """Adapters it can hold at once (0 when unknown)."""
        ...

    @property
    def kv_capacity_tokens(self) -> int:
        """Tokens its KV cache holds (0 when unknown)."""
        ...

    @property
    def cost_usd_per_mtok(self) -> float:
        """Its pool's price per million generated tokens at full throughput (0 when unknown)."""
        ...

    @property
    def prefill_tokens_per_s(self) -> float:
        """Modelled prefill throughput, for TTFT predictions (0 when unknown)."""
        ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A frozen snapshot of one replica, satisfying ``EndpointView``."""

    id: str
    url: str = ""
    models: frozenset[str] = frozenset()
    adapters: frozenset[str] = frozenset()
    pool: str = ""
    gpu: str = ""
    price_usd_per_hour: float = 0.0
    routable: bool = True
    draining: bool = False
    num_in_flight: int = 0
    num_waiting: float = 0.0
    num_running: float = 0.0
    kv_usage: float = 0.0
    metrics_age_s: float = float("inf")
    num_in_flight_tokens: int = 0
    max_priority_in_flight: float = float("-inf")
    running_adapters: frozenset[str] = frozenset()
    max_loras: int = 0
    kv_capacity_tokens: int = 0
    cost_usd_per_mtok: float = 0.0
    prefill_tokens_per_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What routing knows about a request: never the prompt itself, only derived keys."""

    model: str
    adapter: str | None = None
    session_key: str | None = None
    prompt_tokens: int = 0
    """Estimated prompt length in tokens (≈ characters / 4 before tokenization)."""
    max_tokens: int = 0
    prompt_text: str = field(default="", repr=False)
    """Canonical prompt text, for prefix-aware plugins only (never logged, not in the repr)."""
    priority: int = 0
    ttft_target_s: float = 0.0
    """The request's class TTFT target (0: none)."""


Ranking = Callable[[], tuple[tuple["EndpointView", ...], dict[str, float]]]
"""Computes a decision's (fallbacks, scores) when they are first read."""


class RoutingDecision:
    """The chosen endpoint, ordered fallbacks, and every candidate's weighted score.

    A picker may pass ``ranking`` instead of ``fallbacks`` and ``scores``: they are
    then computed on first read (the simulator reads neither; the gateway's debug
    header and decision log do). Read-only by convention."""

    __slots__ = ("_fallbacks", "_ranking", "_scores", "endpoint", "num_candidates")

    def __init__(
        self,
        endpoint: EndpointView,
        fallbacks: tuple[EndpointView, ...] = (),
        scores: dict[str, float] | None = None,
        num_candidates: int = 0,
        ranking: Ranking | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.num_candidates = num_candidates
        self._fallbacks = fallbacks
        self._scores: dict[str, float] = {} if scores is None else scores
        self._ranking = ranking

    def _rank(self) -> None:
        ranking = self._ranking
        if ranking is not None:
            self._fallbacks, self._scores = ranking()
            self._ranking = None

    @property
    def fallbacks(self) -> tuple[EndpointView, ...]:
        """The other candidates, best first."""
        self._rank()
        return self._fallbacks

    @property
    def scores(self) -> dict[str, float]:
        """Every candidate's total score, by endpoint id."""
        self._rank()
        return self._scores

    def __repr__(self) -> str:
        return (
            f"RoutingDecision(endpoint={self.endpoint.id!r}, num_candidates={self.num_candidates})"
        )

    def explain(self) -> str:
        """One line: the choice, then each candidate's total score and metric age."""
        parts = []
        scores = self.scores
        for endpoint in (self.endpoint, *self.fallbacks):
            age = endpoint.metrics_age_s
            age_text = f"{age * 1000:.0f}ms" if age != float("inf") else "unscraped"
            parts.append(f"{endpoint.id}={scores.get(endpoint.id, 0.0):.3f}@{age_text}")
        return f"chose {self.endpoint.id} of {self.num_candidates}: " + " ".join(parts)
