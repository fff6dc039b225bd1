"""The profile runner: filters → weighted scorers → picker, in one place.

The runner clamps every scorer's output to [0, 1] (a buggy plugin cannot
dominate), multiplies by the scorer's weight, sums, and hands the totals to the
picker. It counts decisions per plugin outcome for explainability. It never
raises for an empty candidate set: it returns ``None`` and the caller decides
(wait in the admission queue, or answer 503).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gpufleet.config import ProfileConfig
from gpufleet.routing.base import Filter, Picker, Scorer
from gpufleet.routing.registry import build_plugin
from gpufleet.types import EndpointView, RouteRequest, RoutingDecision


@dataclass
class WeightedScorer:
    scorer: Scorer
    weight: float


@dataclass
class RoutingProfile:
    name: str
    filters: list[Filter]
    scorers: list[WeightedScorer]
    picker: Picker
    num_decisions: int = 0
    num_filtered_out: dict[str, int] = field(default_factory=dict)
    """Per filter: how many decisions it emptied the candidate set."""

    @classmethod
    def from_config(cls, name: str, config: ProfileConfig) -> RoutingProfile:
        path = f"routing.profiles.{name}"
        filters = [
            build_plugin("filters", plugin, f"{path}.filters[{i}]")
            for i, plugin in enumerate(config.filters)
        ]
        scorers = [
            WeightedScorer(build_plugin("scorers", plugin, f"{path}.scorers[{i}]"), plugin.weight)
            for i, plugin in enumerate(config.scorers)
        ]
        picker = build_plugin("picker", config.picker, f"{path}.picker")
        return cls(name=name, filters=filters, scorers=scorers, picker=picker)

    @property
    def uses_prompt_text(self) -> bool:
        """Whether any plugin reads ``RouteRequest.prompt_text`` (else it is not built)."""
        return any(getattr(w.scorer, "uses_prompt_text", False) for w in self.scorers)

    def on_dispatch(self, request: RouteRequest, endpoint: EndpointView) -> list[object]:
        """Tell stateful plugins where the request went; returns their completion contexts."""
        contexts: list[object] = []
        for weighted in self.scorers:
            hook = getattr(weighted.scorer, "on_dispatch", None)
            contexts.append(hook(request, endpoint) if hook is not None else None)
        return contexts

    def on_complete(
        self, endpoint: EndpointView, contexts: list[object], cached_tokens: int
    ) -> None:
        """Feed the engine's report (prefix-cache hit in tokens) back to stateful plugins."""
        for weighted, context in zip(self.scorers, contexts, strict=True):
            hook = getattr(weighted.scorer, "on_complete", None)
            if hook is not None and context is not None:
                hook(endpoint, context, cached_tokens)

    def candidates(
        self, request: RouteRequest, endpoints: Sequence[EndpointView]
    ) -> Sequence[EndpointView]:
        """The endpoints that pass every filter."""
        for plugin in self.filters:
            endpoints = plugin.filter(request, endpoints)
            if not endpoints:
                self.num_filtered_out[plugin.name] = self.num_filtered_out.get(plugin.name, 0) + 1
                return endpoints
        return endpoints

    def decide(
        self, request: RouteRequest, endpoints: Sequence[EndpointView]
    ) -> RoutingDecision | None:
        """Route ``request`` among ``endpoints``; ``None`` when no candidate survives."""
        candidates = self.candidates(request, endpoints)
        if not candidates:
            return None
        self.num_decisions += 1
        totals = [0.0] * len(candidates)
        for weighted in self.scorers:
            weight = weighted.weight
            raw = weighted.scorer.score(request, candidates)
            for i, value in enumerate(raw):
                # NaN and out-of-range scores are clamped: a buggy plugin cannot dominate.
                clamped = value if 0.0 <= value <= 1.0 else (1.0 if value > 1.0 else 0.0)
                totals[i] += weight * clamped
        return self.picker.pick(request, candidates, totals)
