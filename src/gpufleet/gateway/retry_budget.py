"""A retry budget: retries may add at most a fraction of the request load.

Token bucket: every request deposits ``ratio`` tokens, time deposits
``min_per_s`` tokens per second (so a quiet gateway can still retry), every
retry withdraws one; the bucket holds at most ``min_per_s × window_s`` plus
``ratio × 100`` tokens. A failing replica therefore cannot multiply the load
on the others by more than (1 + ratio). Pure: time is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpufleet.config import RetryConfig


@dataclass
class RetryBudget:
    config: RetryConfig
    _tokens: float = field(default=0.0, init=False)
    _updated_s: float | None = field(default=None, init=False)

    @property
    def capacity(self) -> float:
        config = self.config
        return max(
            1.0, config.min_retries_per_s * config.budget_window_s + config.budget_ratio * 100
        )

    def record_request(self, now_s: float) -> None:
        self._refill(now_s)
        self._tokens = min(self.capacity, self._tokens + self.config.budget_ratio)

    def try_spend(self, now_s: float) -> bool:
        """Withdraw one retry if the budget allows it."""
        self._refill(now_s)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _refill(self, now_s: float) -> None:
        if self._updated_s is None:
            self._updated_s = now_s
            self._tokens = self.capacity
            return
        elapsed = max(0.0, now_s - self._updated_s)
        self._updated_s = now_s
        self._tokens = min(self.capacity, self._tokens + elapsed * self.config.min_retries_per_s)
