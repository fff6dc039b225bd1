"""Pickers: turn weighted scores into a ``RoutingDecision``."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
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

        def order(totals: Sequence[float]) -> list[int]:
            ranked = sorted(range(len(totals)), key=totals.__getitem__, reverse=True)
            ranked[0], ranked[tie] = ranked[tie], ranked[0]  # ties keep candidate order
            return ranked

        return _decision(endpoints, scores, chosen, order)


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
            return _decision(endpoints, scores, 0, lambda _: [0])
        first, second = self._rng.sample(range(count), 2)
        chosen = first if scores[first] >= scores[second] else second

        def order(totals: Sequence[float]) -> list[int]:
            rest = sorted((i for i in range(count) if i != chosen), key=lambda i: -totals[i])
            return [chosen, *rest]

        return _decision(endpoints, scores, chosen, order)


def _decision(
    endpoints: Sequence[EndpointView],
    scores: Sequence[float],
    chosen: int,
    order: Callable[[Sequence[float]], list[int]],
) -> RoutingDecision:
    """The decision for ``endpoints[chosen]``; ``order(scores)`` (every candidate, the
    chosen first) ranks the fallbacks and scores when they are first read, on copies of
    the candidates and scores as they are now."""
    candidates, totals = list(endpoints), list(scores)

    def ranking() -> tuple[tuple[EndpointView, ...], dict[str, float]]:
        ranked = order(totals)
        return (
            tuple(candidates[i] for i in ranked[1:]),
            {candidates[i].id: totals[i] for i in ranked},
        )

    return RoutingDecision(candidates[chosen], num_candidates=len(candidates), ranking=ranking)
