"""Fault injection for tests and drills (``gpufleet engine --fail-fraction …``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Faults:
    fail_fraction: float = 0.0
    """Answer this fraction of inference requests with a 500 (deterministic spacing)."""
    die_after_tokens: int = 0
    """Exit the process abruptly once this many tokens have been streamed in total (0: never)."""
    reset_after_tokens: int = 0
    """Reset (TCP RST) the connection of every stream once it has streamed this many
    tokens; the process stays up (a flaky network path). 0: never."""
    hang: bool = False
    """Accept inference requests and never answer them (a replica stuck before the first byte)."""
    slow_start_s: float = 0.0
    """``/health`` answers 503 for this long after start (model loading)."""
    unhealthy: bool = False
    """``/health`` always answers 503."""

    def fails(self, request_number: int) -> bool:
        """Whether the ``request_number``-th request (1-based) fails: every k-th one,
        k = round(1 / fail_fraction), so the fraction holds exactly over any k requests."""
        if self.fail_fraction <= 0:
            return False
        if self.fail_fraction >= 1:
            return True
        period = max(1, round(1 / self.fail_fraction))
        return request_number % period == 0
