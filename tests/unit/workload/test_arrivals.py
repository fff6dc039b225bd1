"""Arrival processes: rates, burstiness, diurnal shape and steps, over many seeded samples."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from gpufleet.workload import Diurnal, Gamma, Poisson, Step
from gpufleet.workload.arrivals import ArrivalProcess


def arrivals(process: ArrivalProcess, count: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    times, now = [], 0.0
    for _ in range(count):
        now = process.next_arrival_s(now, rng)
        times.append(now)
    return times


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip([0.0, *times], times, strict=False)]


def test_poisson_rate_and_cv_within_tolerance() -> None:
    times = arrivals(Poisson(50.0), 40_000)
    rate = len(times) / times[-1]
    assert rate == pytest.approx(50.0, rel=0.03)  # 40k samples: σ ≈ 0.5%
    g = gaps(times)
    assert statistics.stdev(g) / statistics.mean(g) == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("cv", [0.5, 1.0, 3.0])
def test_gamma_keeps_the_mean_rate_and_has_the_requested_cv(cv: float) -> None:
    g = gaps(arrivals(Gamma(20.0, cv), 60_000, seed=7))
    assert 1 / statistics.mean(g) == pytest.approx(20.0, rel=0.05)
    assert statistics.stdev(g) / statistics.mean(g) == pytest.approx(cv, rel=0.08)


def test_diurnal_peak_to_trough_ratio_and_mean() -> None:
    process = Diurnal(mean_rate_per_s=20.0, peak_to_trough=4.0, period_s=100.0, peak_at_s=25.0)
    assert process.rate_at(25.0) / process.rate_at(75.0) == pytest.approx(4.0)
    times = [t for t in arrivals(process, 200_000, seed=3) if t < 10_000]
    assert len(times) / 10_000 == pytest.approx(20.0, rel=0.02)
    # 10-second windows around the peak (20-30 s mod 100) and the trough (70-80 s)
    peak = sum(1 for t in times if 20 <= t % 100 < 30)
    trough = sum(1 for t in times if 70 <= t % 100 < 80)
    expected = (1 + 0.6 * math.sin(math.pi / 10) / (math.pi / 10)) / (
        1 - 0.6 * math.sin(math.pi / 10) / (math.pi / 10)
    )  # window averages of 1 ± a·cos, a = 3/5
    assert peak / trough == pytest.approx(expected, rel=0.05)


def test_step_rates_pauses_and_end() -> None:
    process = Step(((0.0, 100.0), (10.0, 0.0), (20.0, 400.0), (30.0, 0.0)))
    times = arrivals(process, 100_000, seed=5)
    assert math.isinf(times[-1]), "a final rate of 0 ends the stream"
    finite = [t for t in times if math.isfinite(t)]
    assert sum(1 for t in finite if t < 10) == pytest.approx(1000, rel=0.1)
    assert not [t for t in finite if 10 <= t < 20], "rate 0 is a pause"
    assert sum(1 for t in finite if 20 <= t < 30) == pytest.approx(4000, rel=0.05)
    assert max(finite) < 30


@pytest.mark.parametrize(
    "make",
    [
        lambda: Poisson(0),
        lambda: Gamma(1, 0),
        lambda: Diurnal(1, 0.5),
        lambda: Step(((1.0, 5.0),)),
        lambda: Step(((0.0, 5.0), (0.0, 1.0))),
        lambda: Step(((0.0, 0.0),)),
    ],
)
def test_invalid_parameters_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]
