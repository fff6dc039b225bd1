"""One tenant's limits over time: requests/min, tokens/min, concurrency, token budget.

``TenantLimiter.admit`` checks every limit and commits only when all pass (a refused
request costs the tenant nothing); ``settle`` charges the request's actual tokens
and frees its concurrency slot. Pure: time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gpufleet.tenancy.buckets import BudgetWindow, TokenBucket
from gpufleet.tenancy.keys import Tenant

CONCURRENCY_RETRY_S = 1.0


class Limit(StrEnum):
    REQUESTS = "requests_per_minute"
    TOKENS = "tokens_per_minute"
    CONCURRENCY = "max_concurrent"
    BUDGET = "token_budget"
    STORE = "store_unavailable"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused and when a retry may succeed."""

    limit: Limit
    retry_after_s: float


@dataclass(slots=True)
class TenantLimiter:
    tenant: Tenant
    requests: TokenBucket | None = None
    tokens: TokenBucket | None = None
    budget: BudgetWindow | None = None
    in_flight: int = 0

    def __post_init__(self) -> None:
        t = self.tenant
        if t.requests_per_minute is not None:
            self.requests = TokenBucket(float(t.requests_per_minute))
        if t.tokens_per_minute is not None:
            self.tokens = TokenBucket(float(t.tokens_per_minute))
        if t.token_budget is not None:
            self.budget = BudgetWindow(t.token_budget, t.budget_period_s)

    def admit(self, now_s: float) -> Refusal | None:
        """Check all limits; on success take one request and one concurrency slot."""
        t = self.tenant
        if t.max_concurrent is not None and self.in_flight >= t.max_concurrent:
            return Refusal(Limit.CONCURRENCY, CONCURRENCY_RETRY_S)
        if self.budget is not None and (wait := self.budget.wait_s(now_s)) > 0:
            return Refusal(Limit.BUDGET, wait)
        if self.tokens is not None and (wait := self.tokens.wait_s(1e-9, now_s)) > 0:
            return Refusal(Limit.TOKENS, wait)
        if self.requests is not None and (wait := self.requests.take(1.0, now_s)) > 0:
            return Refusal(Limit.REQUESTS, wait)
        self.in_flight += 1
        return None

    def settle(self, num_tokens: int, now_s: float) -> None:
        """Charge ``num_tokens`` (prompt + generated) and free the request's slot."""
        self.in_flight = max(0, self.in_flight - 1)
        if num_tokens > 0:
            if self.tokens is not None:
                self.tokens.charge(float(num_tokens), now_s)
            if self.budget is not None:
                self.budget.charge(num_tokens, now_s)
