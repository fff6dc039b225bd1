"""The three plugin contracts of a routing profile.

A profile runs ``filters`` in order (each narrows the candidates), then every
``scorer`` (each returns one score **in [0, 1]** per candidate, higher is
better, aligned with the candidate list it was given), then the ``picker``,
which turns the weighted sum into a ``RoutingDecision``. Plugins are pure and
synchronous: no I/O, no clock; a plugin may keep its own state (a rotation
counter, a hash ring) in its instance, never at module level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gpufleet.types import EndpointView, RouteRequest, RoutingDecision

STRICT_PARAMS: dict[str, str] = {"extra": "forbid"}
"""pydantic config for plugin params: unknown params are rejected."""


class Filter(Protocol):
    name: str

    def filter(
        self, request: RouteRequest, endpoints: Sequence[EndpointView]
    ) -> Sequence[EndpointView]:
        """Return the subset of ``endpoints`` that may serve ``request`` (order kept)."""
        ...


class Scorer(Protocol):
    name: str

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        """One score in [0, 1] per endpoint, same order; higher means better."""
        ...


class Picker(Protocol):
    name: str

    def pick(
        self,
        request: RouteRequest,
        endpoints: Sequence[EndpointView],
        scores: Sequence[float],
    ) -> RoutingDecision:
        """Choose among non-empty ``endpoints`` given their total weighted ``scores``."""
        ...
