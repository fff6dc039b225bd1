"""Pickers: turn weighted scores into a ``RoutingDecision``."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from gpufleet.routing.base import STRICT_PARAMS
from gpufleet.types import EndpointView, RouteRequest, RoutingDecision


@dataclass
class _SeededPicker:
    """A picker with its own random stream (``seed`` None: seeded from the OS)."""

    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)


@dataclass
class MaxScorePicker(_SeededPicker):
    """Chooses the highest total score; ties are broken at random (seeded).

    Fallbacks are the other candidates in descending score order (ties in candidate
    order). One C-level sort and one random draw per decision, however many candidates.
    """

    name: str = "max-score-picker"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def pick(
        self,
        request: RouteRequest,
        endpoints: Sequence[EndpointView],
        scores: Sequence[float],
    ) -> RoutingDecision:
        order = sorted(range(len(endpoints)), key=scores.__getitem__, reverse=True)
        best = scores[order[0]]
        num_tied = 1
        while num_tied < len(order) and scores[order[num_tied]] == best:
            num_tied += 1
        if num_tied > 1:
            chosen = self._rng.randrange(num_tied)
            order[0], order[chosen] = order[chosen], order[0]
        return _decision(endpoints, scores, order)


@dataclass
class PowerOfTwoPicker(_SeededPicker):
    """Power of two choices: samples two candidates, keeps the better-scored one.

    With a load scorer this gives near-least-loaded placement while never
    herding a burst onto the single least-loaded replica.
    """

    name: str = "power-of-two-picker"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def pick(
        self,
        request: RouteRequest,
        endpoints: Sequence[EndpointView],
        scores: Sequence[float],
    ) -> RoutingDecision:
        count = len(endpoints)
        if count == 1:
            return _decision(endpoints, scores, [0])
        first, second = self._rng.sample(range(count), 2)
        chosen = first if scores[first] >= scores[second] else second
        rest = sorted((i for i in range(count) if i != chosen), key=lambda i: -scores[i])
        return _decision(endpoints, scores, [chosen, *rest])


def _decision(
    endpoints: Sequence[EndpointView], scores: Sequence[float], order: Sequence[int]
) -> RoutingDecision:
    return RoutingDecision(
        endpoint=endpoints[order[0]],
        fallbacks=tuple(endpoints[i] for i in order[1:]),
        scores={endpoints[i].id: scores[i] for i in order},
        num_candidates=len(endpoints),
    )
