from __future__ import annotations

from gpufleet.config import RetryConfig
from gpufleet.gateway.retry_budget import RetryBudget


def test_budget_limits_retries_to_a_fraction_of_requests() -> None:
    budget = RetryBudget(RetryConfig(budget_ratio=0.1, min_retries_per_s=0.0, budget_window_s=1))
    now = 0.0
    granted = 0
    for i in range(10_000):
        now = i * 0.001
        budget.record_request(now)
        if budget.try_spend(now):
            granted += 1
    # the bucket starts full (capacity 10) and then refills at 0.1 per request
    assert 1000 <= granted <= 1000 + budget.capacity


def test_time_refills_a_quiet_gateway() -> None:
    budget = RetryBudget(RetryConfig(budget_ratio=0.0, min_retries_per_s=2.0, budget_window_s=5))
    assert sum(budget.try_spend(0.0) for _ in range(100)) == 10
    assert not budget.try_spend(0.1)
    assert budget.try_spend(1.0)
