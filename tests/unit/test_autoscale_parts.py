"""The autoscaler's parts on their own: rate forecast, cost order, budget trimming."""

from __future__ import annotations

import numpy as np
import pytest

from gpufleet.autoscale.allocation import Slot, allocate, cost_order, trim_to_budget
from gpufleet.autoscale.forecast import RateForecaster


def test_forecast_learns_a_ramp_and_stays_flat_on_noise() -> None:
    ramp = RateForecaster(level_tau_s=60, trend_tau_s=150)
    for i in range(200):
        ramp.observe(15.0 * i, 10.0 + 0.05 * 15.0 * i)  # +0.05 req/s per second
    assert ramp.trend == pytest.approx(0.05, rel=0.02)
    assert ramp.forecast(120) == pytest.approx(10 + 0.05 * (15 * 199 + 120), rel=0.01)
    rng = np.random.default_rng(3)
    noisy = RateForecaster(level_tau_s=60, trend_tau_s=150)
    for i in range(400):
        noisy.observe(15.0 * i, rng.poisson(40 * 15) / 15)
    assert noisy.level == pytest.approx(40, rel=0.05)
    assert abs(noisy.trend * 195) < 2.0  # < 5% of the load over a cold start
    assert noisy.forecast(1e9) >= 0


def test_forecaster_rejects_bad_time_constants() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateForecaster(level_tau_s=0)


def slot(key: str, spot: bool, usd: float, usable: float, **kw: int | None) -> Slot:
    model, pool = "m", key
    return Slot(f"{pool}/{model}", model, pool, spot, usd, usable,
                kw.get("min_replicas") or 0, kw.get("max_replicas"))  # fmt: skip


def test_cost_order_is_spot_then_on_demand_by_price_per_capacity_unhealthy_spot_last() -> None:
    slots = [
        slot("a100", False, 4.0, 20.0),  # $0.20 per req/s
        slot("l4", False, 0.8, 8.0),  # $0.10
        slot("spot-h100", True, 3.4, 32.0),  # $0.11
        slot("spot-l4", True, 0.4, 8.0),  # $0.05
    ]
    assert [s.pool for s in cost_order(slots, {})] == ["spot-l4", "spot-h100", "l4", "a100"]
    assert [s.pool for s in cost_order(slots, {"spot-l4": "notices"})] == [
        "spot-h100", "l4", "a100", "spot-l4",
    ]  # fmt: skip


def test_allocate_honours_minimums_and_keeps_unhealthy_ready_replicas() -> None:
    slots = [slot("spot", True, 0.4, 8.0), slot("od", False, 0.8, 8.0, min_replicas=1)]
    out = allocate(slots, 30.0, unhealthy={}, ready={}, max_spot_fraction=1.0, floor=1)
    assert out == {"spot/m": 3, "od/m": 1}  # the minimum counts toward the demand
    out = allocate(
        slots, 30.0, unhealthy={"spot": "x"}, ready={"spot/m": 2}, max_spot_fraction=1.0, floor=1
    )
    assert out == {"spot/m": 2, "od/m": 2}
    assert allocate(slots[:1], 0.0, unhealthy={}, ready={}, max_spot_fraction=1, floor=1) == {
        "spot/m": 1
    }
    assert allocate(slots[:1], 0.0, unhealthy={}, ready={}, max_spot_fraction=1, floor=0) == {
        "spot/m": 0
    }


def test_budget_trim_keeps_minimums_and_each_models_last_replica_while_it_can() -> None:
    slots = [
        Slot("od/a", "a", "od", False, 1.0, 8.0, 0, None),
        Slot("od/b", "b", "od", False, 1.0, 4.0, 0, None),  # dearer capacity
        Slot("spot/a", "a", "spot", True, 0.5, 8.0, 1, None),
    ]
    desired = {"od/a": 3, "od/b": 2, "spot/a": 1}
    removed = trim_to_budget(slots, desired, 2.6)
    assert desired == {"od/a": 1, "od/b": 1, "spot/a": 1}  # $2.50
    assert removed == {"od/a": 2, "od/b": 1}
    trim_to_budget(slots, desired, 0.5)
    assert desired == {"od/a": 0, "od/b": 0, "spot/a": 1}  # the minimum stays, over budget
