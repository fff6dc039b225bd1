"""What a policy decided, and why: one explainable line per deployment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeploymentDecision:
    """Desired replicas of one deployment (``key`` = ``"pool/model"``) and the reason.

    ``current`` counts the replicas that serve or will serve (ready + starting);
    the controller acts only when ``desired != current``.
    """

    key: str
    model: str
    pool: str
    current: int
    desired: int
    reason: str

    @property
    def changed(self) -> bool:
        return self.desired != self.current

    def describe(self) -> str:
        """``scale pool/model 2→4: forecast 310 req/s at t+95 s > capacity 2×120 req/s``."""
        verb = "scale" if self.changed else "keep"
        return f"{verb} {self.key} {self.current}→{self.desired}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ScalingDecision:
    """One evaluation at ``now_s``: a decision per managed deployment, and its cost."""

    now_s: float
    deployments: Mapping[str, DeploymentDecision]
    cost_usd_per_hour: float
    """Price of the desired replicas (all managed deployments)."""

    @property
    def replicas(self) -> dict[str, int]:
        return {key: d.desired for key, d in self.deployments.items()}

    def changes(self) -> list[DeploymentDecision]:
        return [d for d in self.deployments.values() if d.changed]
