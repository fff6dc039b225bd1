"""Token buckets and budget windows: the pure arithmetic of rate limits (time passed in).

The Redis Lua scripts in ``redis_store`` implement the same algorithms; both are
tested against the same expectations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """Holds up to ``capacity`` units, refilled at ``capacity`` per ``period_s``.

    ``take`` admits when at least ``amount`` units are there; ``charge`` debits after
    the fact and may leave the level negative (a debt repaid by refill), which is how
    token rates are enforced when the token count is known only at completion.
    """

    capacity: float
    period_s: float = 60.0
    level: float = math.nan
    updated_s: float = math.nan

    def _refill(self, now_s: float) -> None:
        if math.isnan(self.level):
            self.level, self.updated_s = self.capacity, now_s
            return
        elapsed = max(0.0, now_s - self.updated_s)
        self.level = min(self.capacity, self.level + elapsed * self.capacity / self.period_s)
        self.updated_s = now_s

    def wait_s(self, amount: float, now_s: float) -> float:
        """Seconds until ``amount`` units are available (0 when they are now)."""
        self._refill(now_s)
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing * self.period_s / self.capacity

    def take(self, amount: float, now_s: float) -> float:
        """Take ``amount`` units if available and return 0, else the seconds to wait."""
        wait = self.wait_s(amount, now_s)
        if wait == 0.0:
            self.level -= amount
        return wait

    def charge(self, amount: float, now_s: float) -> None:
        self._refill(now_s)
        self.level -= amount


@dataclass(slots=True)
class BudgetWindow:
    """Units spent in fixed windows of ``period_s`` counted from the epoch."""

    budget: int
    period_s: float
    window: int = -1
    used: int = 0

    def _roll(self, now_s: float) -> None:
        window = math.floor(now_s / self.period_s)
        if window != self.window:
            self.window, self.used = window, 0

    def wait_s(self, now_s: float) -> float:
        """0 while budget remains; else the seconds until the next window opens."""
        self._roll(now_s)
        if self.used < self.budget:
            return 0.0
        return (self.window + 1) * self.period_s - now_s

    def charge(self, amount: int, now_s: float) -> None:
        self._roll(now_s)
        self.used += amount
