"""Arrival-rate forecasting: Holt's linear smoothing on irregular time steps.

Contract: `RateForecaster.observe(now_s, rate)` folds one observed rate in;
``forecast(horizon_s)`` is the smoothed level plus the trend times the
horizon, never negative. Algorithm, for a step of ``dt`` seconds::

    predicted = level + trend·dt
    level'    = predicted + α·(rate − predicted)        α = 1 − exp(−dt / τ_level)
    trend'    = trend + β·((level' − level)/dt − trend)  β = 1 − exp(−dt / τ_trend)

with τ_level = max(``level_tau_s``, ``min_arrivals`` / level) — at low rates
the level averages over at least ``min_arrivals`` arrivals, so a Poisson
load's relative noise stays near 1/√(2·min_arrivals) — and τ_trend =
max(``trend_tau_s``, 2.5·τ_level). On a steady ramp the trend converges to the
slope and the level has no lag; on a noisy steady load the trend stays near
zero. The first observation sets the level (trend 0).
"""

from __future__ import annotations

import math


class RateForecaster:
    """Level and trend of one arrival rate (requests/s and requests/s²)."""

    __slots__ = ("_last_s", "level", "level_tau_s", "min_arrivals", "trend", "trend_tau_s")

    def __init__(
        self, level_tau_s: float = 60.0, trend_tau_s: float = 300.0, min_arrivals: float = 0.0
    ) -> None:
        if level_tau_s <= 0 or trend_tau_s <= 0 or min_arrivals < 0:
            raise ValueError("smoothing time constants must be positive")
        self.level_tau_s = level_tau_s
        self.trend_tau_s = trend_tau_s
        self.min_arrivals = min_arrivals
        self.level = 0.0
        self.trend = 0.0
        self._last_s: float | None = None

    def observe(self, now_s: float, rate_per_s: float) -> None:
        last = self._last_s
        if last is None:
            self.level, self._last_s = max(0.0, rate_per_s), now_s
            return
        dt = now_s - last
        if dt <= 0:
            return
        level_tau = self.level_tau_s
        if self.min_arrivals and self.level > 0:
            level_tau = max(level_tau, self.min_arrivals / self.level)
        alpha = 1.0 - math.exp(-dt / level_tau)
        beta = 1.0 - math.exp(-dt / max(self.trend_tau_s, 2.5 * level_tau))
        predicted = self.level + self.trend * dt
        level = predicted + alpha * (rate_per_s - predicted)
        self.trend += beta * ((level - self.level) / dt - self.trend)
        self.level = max(0.0, level)
        self._last_s = now_s

    def forecast(self, horizon_s: float) -> float:
        """Rate expected ``horizon_s`` from the last observation (≥ 0)."""
        return max(0.0, self.level + self.trend * horizon_s)
