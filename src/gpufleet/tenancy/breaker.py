"""A circuit breaker for the shared store (pure: time passed in).

Closed: every call goes through. After ``max_failures`` consecutive failures it
opens: calls are refused without touching the network until ``cooldown_s`` has
passed, then one probe is let through (half-open); its success closes the
breaker, its failure re-opens it for another cooldown. So a dead store costs a
comparison per request, not a timeout.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CircuitBreaker:
    max_failures: int
    cooldown_s: float
    failures: int = 0
    open_until_s: float = 0.0
    probing: bool = False

    @property
    def is_open(self) -> bool:
        return self.failures >= self.max_failures

    def allow(self, now_s: float) -> bool:
        """May a call go to the store now? Lets one probe through after the cooldown."""
        if not self.is_open:
            return True
        if self.probing or now_s < self.open_until_s:
            return False
        self.probing = True
        return True

    def record_success(self) -> bool:
        """Record a success; True when this closed an open breaker."""
        was_open = self.is_open
        self.failures, self.probing = 0, False
        return was_open

    def record_failure(self, now_s: float) -> bool:
        """Record a failure; True when this opened (or re-opened) the breaker."""
        self.failures += 1
        self.probing = False
        if self.is_open:
            self.open_until_s = now_s + self.cooldown_s
            return True
        return False
