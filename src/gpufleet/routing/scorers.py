"""Scorers: one score in [0, 1] per candidate, higher is better."""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from gpufleet.routing.base import STRICT_PARAMS
from gpufleet.types import EndpointView, RouteRequest


@dataclass
class RoundRobinScorer:
    """Gives 1 to the next candidate in rotation, 0 to the others.

    The rotation counter advances once per decision, so over N decisions on a
    stable candidate set of size k every candidate gets ⌊N/k⌋ or ⌈N/k⌉.
    """

    name: str = "round-robin-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS
    _turn: int = field(default=0, init=False, repr=False)

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        scores = [0.0] * len(endpoints)
        if endpoints:
            scores[self._turn % len(endpoints)] = 1.0
            self._turn += 1
        return scores


@dataclass
class LeastOutstandingScorer:
    """Prefers the endpoint with the fewest requests the gateway has in flight to it.

    score = 1 − in_flight / (max in_flight among candidates + 1).
    """

    name: str = "least-outstanding-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        loads = [e.num_in_flight for e in endpoints]
        top = max(loads, default=0) + 1
        return [1.0 - load / top for load in loads]


@dataclass
class SessionAffinityScorer:
    """Consistent hashing with bounded load (Mirrokni et al.) on the request's session key.

    Each endpoint owns ``virtual_nodes`` points on a hash ring. A session maps to
    the first point clockwise from its hash whose endpoint's in-flight load is at
    most ``load_factor`` × the mean load (rounded up, at least 1); that endpoint
    scores 1, the others 0. Requests without a session key score 0 everywhere.
    Adding or removing an endpoint moves only the sessions that hashed to it.
    """

    load_factor: float = 1.25
    virtual_nodes: int = 64
    name: str = "session-affinity-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS
    _ring_ids: tuple[str, ...] = field(default=(), init=False, repr=False)
    _ring_keys: list[int] = field(default_factory=list, init=False, repr=False)
    _ring_owners: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.load_factor < 1.0:
            raise ValueError("load_factor must be >= 1")
        if self.virtual_nodes < 1:
            raise ValueError("virtual_nodes must be >= 1")

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        scores = [0.0] * len(endpoints)
        if request.session_key is None or not endpoints:
            return scores
        self._ensure_ring(endpoints)
        position = {e.id: i for i, e in enumerate(endpoints)}
        total = sum(e.num_in_flight for e in endpoints) + 1
        bound = max(1, math.ceil(self.load_factor * total / len(endpoints)))
        start = bisect_right(self._ring_keys, _hash64(request.session_key))
        num_points = len(self._ring_keys)
        for step in range(num_points):
            owner = self._ring_owners[(start + step) % num_points]
            index = position[owner]
            if endpoints[index].num_in_flight < bound:
                scores[index] = 1.0
                return scores
        return scores

    def _ensure_ring(self, endpoints: Sequence[EndpointView]) -> None:
        ids = tuple(sorted(e.id for e in endpoints))
        if ids == self._ring_ids:
            return
        points = sorted(
            (_hash64(f"{eid}#{v}"), eid) for eid in ids for v in range(self.virtual_nodes)
        )
        self._ring_ids = ids
        self._ring_keys = [key for key, _ in points]
        self._ring_owners = [eid for _, eid in points]


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
