"""Settings of one simulation run (everything not in fleet.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpufleet.sim.lifecycle import ColdStart, SpotPolicy


@dataclass(frozen=True)
class SimOptions:
    """``duration_s`` of arrivals, then up to ``max_drain_s`` to finish what is in flight
    (requests still open after that fail with cause ``unfinished``). Spot pools use
    ``spot[pool]`` or ``default_spot``. SLO: TTFT ≤ ``slo_ttft_s`` (None: the request
    class's ``ttft_target_s``, or 2 s when it has none) and mean ITL ≤ ``slo_itl_s``.
    ``check_invariants`` verifies the KV pool of every engine after every step (tests)."""

    duration_s: float
    seed: int = 0
    max_drain_s: float = 600.0
    cold_start: ColdStart = ColdStart()  # noqa: RUF009 (frozen value)
    spot: Mapping[str, SpotPolicy] = field(default_factory=dict)
    default_spot: SpotPolicy = SpotPolicy()  # noqa: RUF009 (frozen value)
    warm_start: bool = True
    slo_ttft_s: float | None = None
    slo_itl_s: float = 0.1
    bucket_s: float = 10.0
    check_invariants: bool = False

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.bucket_s <= 0 or self.max_drain_s < 0:
            raise ValueError("duration_s and bucket_s must be positive, max_drain_s ≥ 0")
