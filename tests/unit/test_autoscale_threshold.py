"""The KEDA-style comparison policy: waiting requests per replica, HPA semantics."""

from __future__ import annotations

import pytest

from gpufleet.autoscale import DeploymentSignals, FleetSignals, ThresholdPolicy


def snapshot(
    now: float, ready: int, waiting: float, queued: int = 0, in_flight: int = 0
) -> FleetSignals:
    d = DeploymentSignals("m", "p", ready, 0, 0, in_flight, waiting, 0.0, 0.0)
    return FleetSignals(now, {"p/m": d}, {"m": queued}, {})


def test_scales_up_at_once_on_waiting_requests_and_down_after_the_window() -> None:
    policy = ThresholdPolicy({"p/m": "m"}, interval_s=15, scale_down_window_s=300)
    assert policy.desired_replicas(snapshot(15, 1, 12.0)) == {"p/m": 3}  # ceil(12 / 5)
    assert policy.desired_replicas(snapshot(30, 3, 0.0, queued=21)) == {"p/m": 5}
    downs = [policy.desired_replicas(snapshot(45 + 15 * i, 5, 0.0))["p/m"] for i in range(21)]
    assert downs[:19] == [5] * 19  # the 5-minute stabilisation window remembers 5
    assert downs[-1] == 1  # min_replicas


def test_within_tolerance_nothing_changes() -> None:
    policy = ThresholdPolicy({"p/m": "m"})
    assert policy.desired_replicas(snapshot(15, 4, 21.0)) == {"p/m": 4}  # 21/20 - 1 ≤ 10%


def test_in_flight_metric_like_the_rendered_scaled_object() -> None:
    policy = ThresholdPolicy({"p/m": "m"}, target_per_replica=16, metric="in-flight")
    assert policy.desired_replicas(snapshot(15, 2, 0.0, queued=4, in_flight=60)) == {"p/m": 4}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_per_replica": 0}, "positive"),
        ({"min_replicas": 3, "max_replicas": 2}, "min_replicas"),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ThresholdPolicy({"p/m": "m"}, **kwargs)  # type: ignore[arg-type]
