"""Arrival processes: when requests arrive. Pure; time and randomness are arguments.

Every process answers one question, `next_arrival_s(now_s, rng)`: the time of
the first arrival after ``now_s``, or ``math.inf`` when no more arrive. They
hold no state, so one process object can drive any number of independent
streams (and the simulator can step it on virtual time).

- `Poisson`: exponential gaps at a constant rate (CV of gaps = 1).
- `Gamma`: gamma-distributed gaps with the same mean rate and a chosen
  coefficient of variation; CV > 1 is burstier than Poisson, CV < 1 smoother,
  CV = 1 is Poisson.
- `Diurnal`: a Poisson process whose rate follows a sinusoid over
  ``period_s`` (24 h by default) with a given peak/trough ratio; sampled
  exactly by thinning (Lewis & Shedler) at the peak rate.
- `Step`: a Poisson process whose rate is piecewise constant (``steps`` of
  ``(start_s, rate)``); exact, since exponential gaps are memoryless at the
  step boundaries. A rate of 0 is a pause; a final 0 ends the stream.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Protocol


class ArrivalProcess(Protocol):
    def next_arrival_s(self, now_s: float, rng: random.Random) -> float:
        """The first arrival strictly after ``now_s`` (``math.inf``: none)."""
        ...

    @property
    def mean_rate_per_s(self) -> float:
        """Long-run average arrivals per second."""
        ...


def _positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive number, got {value}")


@dataclass(frozen=True, slots=True)
class Poisson:
    rate_per_s: float

    def __post_init__(self) -> None:
        _positive("rate", self.rate_per_s)

    def next_arrival_s(self, now_s: float, rng: random.Random) -> float:
        return now_s + rng.expovariate(self.rate_per_s)

    @property
    def mean_rate_per_s(self) -> float:
        return self.rate_per_s


@dataclass(frozen=True, slots=True)
class Gamma:
    """Gaps ~ Gamma(shape k = 1/cv², scale θ = 1/(rate·k)): mean 1/rate, CV ``cv``."""

    rate_per_s: float
    cv: float

    def __post_init__(self) -> None:
        _positive("rate", self.rate_per_s)
        _positive("cv", self.cv)

    def next_arrival_s(self, now_s: float, rng: random.Random) -> float:
        shape = 1.0 / (self.cv * self.cv)
        return now_s + rng.gammavariate(shape, 1.0 / (self.rate_per_s * shape))

    @property
    def mean_rate_per_s(self) -> float:
        return self.rate_per_s


@dataclass(frozen=True, slots=True)
class Diurnal:
    """Rate λ(t) = mean · (1 + a·cos(2π (t − peak_at_s) / period_s)), a = (r − 1)/(r + 1).

    So λ peaks at ``peak_at_s`` (mod period) with mean·(1 + a), bottoms half a
    period later at mean·(1 − a), and peak/trough = r = ``peak_to_trough``.
    """

    mean_rate_per_s: float
    peak_to_trough: float
    period_s: float = 86_400.0
    peak_at_s: float = 0.0

    def __post_init__(self) -> None:
        _positive("rate", self.mean_rate_per_s)
        _positive("period", self.period_s)
        if not (self.peak_to_trough >= 1 and math.isfinite(self.peak_to_trough)):
            raise ValueError(f"peak/trough ratio must be ≥ 1, got {self.peak_to_trough}")

    @property
    def amplitude(self) -> float:
        return (self.peak_to_trough - 1) / (self.peak_to_trough + 1)

    def rate_at(self, t_s: float) -> float:
        phase = 2 * math.pi * (t_s - self.peak_at_s) / self.period_s
        return self.mean_rate_per_s * (1 + self.amplitude * math.cos(phase))

    def next_arrival_s(self, now_s: float, rng: random.Random) -> float:
        peak = self.mean_rate_per_s * (1 + self.amplitude)
        t = now_s
        while True:
            t += rng.expovariate(peak)
            if rng.random() * peak <= self.rate_at(t):
                return t


@dataclass(frozen=True, slots=True)
class Step:
    """Piecewise-constant rate: ``steps`` are ``(start_s, rate_per_s)`` in increasing start
    order, the first starting at 0; each rate holds until the next start (the last forever)."""

    steps: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.steps or self.steps[0][0] != 0:
            raise ValueError("steps must start at time 0")
        starts = [start for start, _ in self.steps]
        if any(b <= a for a, b in itertools.pairwise(starts)):
            raise ValueError("step start times must increase")
        if any(not (rate >= 0 and math.isfinite(rate)) for _, rate in self.steps):
            raise ValueError("step rates must be ≥ 0")
        if all(rate == 0 for _, rate in self.steps):
            raise ValueError("at least one step needs a positive rate")

    def rate_at(self, t_s: float) -> float:
        rate = self.steps[0][1]
        for start, step_rate in self.steps:
            if start > t_s:
                break
            rate = step_rate
        return rate

    def next_arrival_s(self, now_s: float, rng: random.Random) -> float:
        t = now_s
        while True:
            rate, end = self._segment(t)
            if rate > 0:
                candidate = t + rng.expovariate(rate)
                if candidate < end:
                    return candidate
            if math.isinf(end):
                return math.inf
            t = end

    def _segment(self, t_s: float) -> tuple[float, float]:
        """Rate at ``t_s`` and the start of the next step (``inf`` for the last)."""
        for i, (start, rate) in enumerate(self.steps):
            end = self.steps[i + 1][0] if i + 1 < len(self.steps) else math.inf
            if start <= t_s < end or (i == 0 and t_s < start):
                return rate, end
        return self.steps[-1][1], math.inf

    @property
    def mean_rate_per_s(self) -> float:
        """The last step's rate (the long-run average)."""
        return self.steps[-1][1]


def describe(process: ArrivalProcess) -> dict[str, object]:
    """A JSON-ready description of ``process``."""
    if isinstance(process, Poisson):
        return {"kind": "poisson", "rate_per_s": process.rate_per_s}
    if isinstance(process, Gamma):
        return {"kind": "gamma", "rate_per_s": process.rate_per_s, "cv": process.cv}
    if isinstance(process, Diurnal):
        return {
            "kind": "diurnal",
            "mean_rate_per_s": process.mean_rate_per_s,
            "peak_to_trough": process.peak_to_trough,
            "period_s": process.period_s,
            "peak_at_s": process.peak_at_s,
        }
    if isinstance(process, Step):
        return {"kind": "step", "steps": [list(step) for step in process.steps]}
    return {"kind": type(process).__name__, "mean_rate_per_s": process.mean_rate_per_s}
