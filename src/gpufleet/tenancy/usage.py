"""Per-tenant usage totals: requests, prompt and generated tokens, cost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpufleet.tenancy.settings import ModelPrice


@dataclass(slots=True)
class UsageTotals:
    requests: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, prompt_tokens: int, generation_tokens: int, cost_usd: float) -> None:
        self.requests += 1
        self.prompt_tokens += prompt_tokens
        self.generation_tokens += generation_tokens
        self.cost_usd += cost_usd

    def as_dict(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "generation_tokens": self.generation_tokens,
            "cost_usd": round(self.cost_usd, 9),
        }


def cost_usd(
    prices: Mapping[str, ModelPrice], model: str, prompt_tokens: int, generation_tokens: int
) -> float:
    """The price of one request's tokens; 0 for a model without a configured price."""
    price = prices.get(model)
    if price is None:
        return 0.0
    return (
        prompt_tokens * price.prompt_usd_per_mtok
        + generation_tokens * price.generation_usd_per_mtok
    ) / 1e6
