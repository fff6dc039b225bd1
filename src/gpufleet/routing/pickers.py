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
    order), sorted only when read. One random draw per decision when scores tie.
    """

    name: str = "max-score-picker"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def pick(
        self,
        request: RouteRequest,
        endpoints: Sequence[EndpointView],
        scores: Sequence[float],
    ) -> RoutingDecision:
        best = max(scores)
        num_tied = scores.count(best)
        tie = self._rng.randrange(num_tied) if num_tied > 1 else 0
        chosen = -1
        for _ in range(tie + 1):  # the tie-th candidate with the best score
            chosen = scores.index(best, chosen + 1)
        candidates, totals = list(endpoints), list(scores)

        def ranking() -> tuple[tuple[EndpointView, ...], dict[str, float]]:
            order = sorted(range(len(candidates)), key=totals.__getitem__, reverse=True)
            order[0], order[tie] = order[tie], order[0]  # ties keep candidate order
            return _ranked(candidates, totals, order)

        return RoutingDecision(candidates[chosen], num_candidates=len(candidates), ranking=ranking)


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
    fallbacks, by_id = _ranked(endpoints, scores, order)
    return RoutingDecision(endpoints[order[0]], fallbacks, by_id, num_candidates=len(endpoints))


def _ranked(
    endpoints: Sequence[EndpointView], scores: Sequence[float], order: Sequence[int]
) -> tuple[tuple[EndpointView, ...], dict[str, float]]:
    """(fallbacks: ``order[1:]``, scores by endpoint id in ``order``)."""
    return (
        tuple(endpoints[i] for i in order[1:]),
        {endpoints[i].id: scores[i] for i in order},
    )
