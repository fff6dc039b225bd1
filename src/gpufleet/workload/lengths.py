"""Token-length distributions for prompts and outputs. Pure; every draw takes the caller's rng.

Each distribution draws integers ≥ 1. `parse_length` reads the command-line
form: ``N`` or ``fixed:N``, ``uniform:LO,HI`` (inclusive), and
``lognormal:MEAN,CV[,MAX]`` (a log-normal with that mean and coefficient of
variation, rounded, clamped to ``[1, MAX]``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

MAX_LENGTH = 1_000_000
"""Default upper clamp of a log-normal draw."""


class LengthDistribution(Protocol):
    def sample(self, rng: random.Random) -> int:
        """One length ≥ 1."""
        ...

    @property
    def mean(self) -> float:
        """The distribution's mean (before clamping, for log-normal)."""
        ...


@dataclass(frozen=True, slots=True)
class Fixed:
    value: int

    def __post_init__(self) -> None:
        if self.value < 1:
            raise ValueError(f"fixed length must be ≥ 1, got {self.value}")

    def sample(self, rng: random.Random) -> int:
        return self.value

    @property
    def mean(self) -> float:
        return float(self.value)


@dataclass(frozen=True, slots=True)
class Uniform:
    low: int
    high: int

    def __post_init__(self) -> None:
        if not 1 <= self.low <= self.high:
            raise ValueError(f"uniform lengths need 1 ≤ low ≤ high, got {self.low},{self.high}")

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal with the given mean and coefficient of variation (std / mean).

    With σ² = ln(1 + cv²) and μ = ln(mean) − σ²/2, ``exp(N(μ, σ²))`` has exactly
    that mean and CV; draws are rounded and clamped to ``[1, max_value]``.
    """

    mean_value: float
    cv: float
    max_value: int = MAX_LENGTH

    def __post_init__(self) -> None:
        if not (self.mean_value >= 1 and self.cv >= 0 and self.max_value >= 1):
            raise ValueError("log-normal lengths need mean ≥ 1, cv ≥ 0 and max ≥ 1")

    @property
    def sigma(self) -> float:
        return math.sqrt(math.log1p(self.cv * self.cv))

    @property
    def mu(self) -> float:
        return math.log(self.mean_value) - self.sigma**2 / 2

    def sample(self, rng: random.Random) -> int:
        value = round(rng.lognormvariate(self.mu, self.sigma))
        return min(max(value, 1), self.max_value)

    @property
    def mean(self) -> float:
        return self.mean_value


def parse_length(text: str) -> LengthDistribution:
    """The distribution written as ``text`` (module doc); ``ValueError`` with the reason."""
    kind, _, params = text.strip().partition(":")
    if not params:
        kind, params = "fixed", kind
    try:
        values = [float(p) for p in params.split(",")]
    except ValueError:
        raise ValueError(f"{text!r}: parameters must be numbers") from None
    arity = {"fixed": (1,), "uniform": (2,), "lognormal": (2, 3)}
    if kind not in arity:
        raise ValueError(f"{text!r}: unknown distribution {kind!r} (fixed, uniform, lognormal)")
    if len(values) not in arity[kind]:
        raise ValueError(f"{text!r}: {kind} takes {' or '.join(map(str, arity[kind]))} values")
    if kind == "fixed":
        return Fixed(_whole(text, values[0]))
    if kind == "uniform":
        return Uniform(_whole(text, values[0]), _whole(text, values[1]))
    maximum = _whole(text, values[2]) if len(values) == 3 else MAX_LENGTH
    return LogNormal(values[0], values[1], maximum)


def _whole(text: str, value: float) -> int:
    if value != int(value):
        raise ValueError(f"{text!r}: {value} is not a whole number of tokens")
    return int(value)


def describe(distribution: LengthDistribution) -> dict[str, object]:
    """A JSON-ready description, e.g. ``{"kind": "uniform", "low": 1, "high": 9}``."""
    if isinstance(distribution, Fixed):
        return {"kind": "fixed", "value": distribution.value}
    if isinstance(distribution, Uniform):
        return {"kind": "uniform", "low": distribution.low, "high": distribution.high}
    if isinstance(distribution, LogNormal):
        return {
            "kind": "lognormal",
            "mean": distribution.mean_value,
            "cv": distribution.cv,
            "max": distribution.max_value,
        }
    return {"kind": type(distribution).__name__, "mean": distribution.mean}
