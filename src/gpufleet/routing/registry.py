"""The explicit registry of routing plugins: config name (kebab-case) → class.

Each plugin's params are its dataclass fields; ``build_plugin`` validates them
(unknown params and wrong types are a ``ConfigError`` naming the key path).
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from gpufleet.config import PluginConfig
from gpufleet.errors import ConfigError
from gpufleet.routing.affinity_scorers import LoraAffinityScorer, PrefixAffinityScorer
from gpufleet.routing.cost_scorers import CostScorer, SloHeadroomScorer
from gpufleet.routing.filters import GpuClassFilter, HealthyFilter, ModelFilter, SaturationFilter
from gpufleet.routing.load_scorers import (
    InFlightTokensScorer,
    KvCacheUtilizationScorer,
    LeastLoadScorer,
    QueueDepthScorer,
    RunningRequestsScorer,
)
from gpufleet.routing.pickers import MaxScorePicker, PowerOfTwoPicker
from gpufleet.routing.scorers import (
    LeastOutstandingScorer,
    RoundRobinScorer,
    SessionAffinityScorer,
)

FILTERS: dict[str, type[Any]] = {
    "healthy-filter": HealthyFilter,
    "model-filter": ModelFilter,
    "gpu-class-filter": GpuClassFilter,
    "saturation-filter": SaturationFilter,
}
SCORERS: dict[str, type[Any]] = {
    "round-robin-scorer": RoundRobinScorer,
    "least-outstanding-scorer": LeastOutstandingScorer,
    "session-affinity-scorer": SessionAffinityScorer,
    "queue-depth-scorer": QueueDepthScorer,
    "kv-cache-utilization-scorer": KvCacheUtilizationScorer,
    "running-requests-scorer": RunningRequestsScorer,
    "in-flight-tokens-scorer": InFlightTokensScorer,
    "least-load-scorer": LeastLoadScorer,
    "prefix-affinity-scorer": PrefixAffinityScorer,
    "lora-affinity-scorer": LoraAffinityScorer,
    "cost-scorer": CostScorer,
    "slo-headroom-scorer": SloHeadroomScorer,
}
PICKERS: dict[str, type[Any]] = {
    "max-score-picker": MaxScorePicker,
    "power-of-two-picker": PowerOfTwoPicker,
}
KINDS: dict[str, dict[str, type[Any]]] = {
    "filters": FILTERS,
    "scorers": SCORERS,
    "picker": PICKERS,
}


def build_plugin(kind: str, plugin: PluginConfig, path: str) -> Any:
    """Instantiate the plugin named in ``plugin`` for ``kind`` ('filters', 'scorers', 'picker')."""
    table = KINDS[kind]
    cls = table.get(plugin.name)
    if cls is None:
        raise ConfigError(
            f"{path}.name: unknown {kind.rstrip('s')} {plugin.name!r} "
            f"(available: {', '.join(sorted(table))})"
        )
    if "name" in plugin.params:
        raise ConfigError(f"{path}.params.name: unknown param")
    try:
        return TypeAdapter(cls).validate_python(plugin.params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        unknown = first["type"] in ("extra_forbidden", "unexpected_keyword_argument")
        reason = "unknown param" if unknown else first["msg"]
        suffix = f".{where}" if where else ""
        raise ConfigError(f"{path}.params{suffix}: {reason}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}.params: {exc}") from None
