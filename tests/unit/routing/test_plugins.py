"""Table-driven tests of the routing plugins over plain frozen endpoints."""

from __future__ import annotations

from collections import Counter

import pytest

from gpufleet.config import PluginConfig, ProfileConfig
from gpufleet.errors import ConfigError
from gpufleet.routing.filters import GpuClassFilter, HealthyFilter, ModelFilter
from gpufleet.routing.pickers import MaxScorePicker, PowerOfTwoPicker
from gpufleet.routing.profile import RoutingProfile
from gpufleet.routing.registry import build_plugin
from gpufleet.routing.scorers import (
    LeastOutstandingScorer,
    RoundRobinScorer,
    SessionAffinityScorer,
)
from gpufleet.types import Endpoint, RouteRequest

REQ = RouteRequest(model="m")


def ep(eid: str, **kw: object) -> Endpoint:
    return Endpoint(id=eid, models=frozenset({"m"}), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        ([ep("a"), ep("b", routable=False)], ["a"]),
        ([ep("a", routable=False)], []),
        ([ep("a"), ep("b")], ["a", "b"]),
    ],
)
def test_healthy_filter(endpoints: list[Endpoint], expected: list[str]) -> None:
    assert [e.id for e in HealthyFilter().filter(REQ, endpoints)] == expected


@pytest.mark.parametrize(
    ("request_", "allow_load", "expected"),
    [
        (RouteRequest(model="m"), False, ["a", "b"]),
        (RouteRequest(model="other"), False, []),
        (RouteRequest(model="m", adapter="sql"), False, ["b"]),
        (RouteRequest(model="m", adapter="chat"), False, []),
        (RouteRequest(model="m", adapter="chat"), True, ["a", "b"]),
    ],
)
def test_model_filter(request_: RouteRequest, allow_load: bool, expected: list[str]) -> None:
    endpoints = [ep("a"), ep("b", adapters=frozenset({"sql"}))]
    kept = ModelFilter(allow_adapter_load=allow_load).filter(request_, endpoints)
    assert [e.id for e in kept] == expected


def test_gpu_class_filter() -> None:
    endpoints = [ep("a", gpu="h100-sxm"), ep("b", gpu="l40s")]
    assert [e.id for e in GpuClassFilter(gpus=("l40s",)).filter(REQ, endpoints)] == ["b"]
    assert len(GpuClassFilter().filter(REQ, endpoints)) == 2


def test_round_robin_rotates_evenly() -> None:
    scorer = RoundRobinScorer()
    endpoints = [ep("a"), ep("b"), ep("c")]
    winners = Counter(scorer.score(REQ, endpoints).index(1.0) for _ in range(300))
    assert winners == {0: 100, 1: 100, 2: 100}


@pytest.mark.parametrize(
    ("loads", "best"),
    [([0, 3, 5], 0), ([4, 1, 2], 1), ([2, 2, 0], 2)],
)
def test_least_outstanding_prefers_fewest_in_flight(loads: list[int], best: int) -> None:
    endpoints = [ep(str(i), num_in_flight=n) for i, n in enumerate(loads)]
    scores = LeastOutstandingScorer().score(REQ, endpoints)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores.index(max(scores)) == best


def test_session_affinity_is_sticky_and_bounded() -> None:
    scorer = SessionAffinityScorer(load_factor=1.25)
    endpoints = [ep(str(i)) for i in range(4)]
    homes = {}
    for s in range(200):
        request = RouteRequest(model="m", session_key=f"user-{s}")
        homes[s] = scorer.score(request, endpoints).index(1.0)
        assert scorer.score(request, endpoints).index(1.0) == homes[s]
    assert set(Counter(homes.values())) == {0, 1, 2, 3}
    # a home replica over the load bound hands the session to the next one on the ring
    request = RouteRequest(model="m", session_key="user-0")
    loaded = [ep(e.id, num_in_flight=(50 if i == homes[0] else 0)) for i, e in enumerate(endpoints)]
    moved = scorer.score(request, loaded).index(1.0)
    assert moved != homes[0]


def test_session_affinity_moves_only_sessions_of_a_removed_replica() -> None:
    scorer = SessionAffinityScorer()
    endpoints = [ep(str(i)) for i in range(4)]
    before = {
        s: scorer.score(RouteRequest(model="m", session_key=f"s{s}"), endpoints).index(1.0)
        for s in range(300)
    }
    remaining = endpoints[:3]
    for s, home in before.items():
        after = scorer.score(RouteRequest(model="m", session_key=f"s{s}"), remaining).index(1.0)
        if home != 3:
            assert after == home


def test_no_session_key_scores_zero() -> None:
    assert SessionAffinityScorer().score(REQ, [ep("a"), ep("b")]) == [0.0, 0.0]


def test_max_score_picker_breaks_ties_randomly_and_orders_fallbacks() -> None:
    picker = MaxScorePicker(seed=1)
    endpoints = [ep("a"), ep("b"), ep("c")]
    chosen = Counter(picker.pick(REQ, endpoints, [1.0, 1.0, 0.2]).endpoint.id for _ in range(400))
    assert set(chosen) == {"a", "b"} and min(chosen.values()) > 150
    decision = picker.pick(REQ, endpoints, [0.1, 0.9, 0.5])
    assert decision.endpoint.id == "b"
    assert [e.id for e in decision.fallbacks] == ["c", "a"]
    assert decision.scores == {"a": 0.1, "b": 0.9, "c": 0.5}


def test_power_of_two_picks_the_better_of_two_samples() -> None:
    picker = PowerOfTwoPicker(seed=3)
    endpoints = [ep(str(i)) for i in range(4)]
    scores = [0.0, 0.3, 0.6, 1.0]
    chosen = Counter(picker.pick(REQ, endpoints, scores).endpoint.id for _ in range(3000))
    assert chosen["0"] == 0, "the worst of 4 never wins a pair"
    assert chosen["3"] > chosen["2"] > chosen["1"]


def test_profile_clamps_scores_and_applies_weights() -> None:
    class Wild:
        name = "wild"

        def score(self, request: RouteRequest, endpoints: list[Endpoint]) -> list[float]:
            return [float("nan"), 7.0, -3.0]

    profile = RoutingProfile.from_config("t", ProfileConfig())
    profile.scorers[0].scorer = Wild()  # type: ignore[assignment]
    profile.scorers[0].weight = 2.0
    decision = profile.decide(REQ, [ep("a"), ep("b"), ep("c")])
    assert decision is not None
    assert decision.scores == {"a": 0.0, "b": 2.0, "c": 0.0}


def test_profile_returns_none_when_filters_empty_the_set() -> None:
    profile = RoutingProfile.from_config("t", ProfileConfig())
    assert profile.decide(REQ, [ep("a", routable=False)]) is None
    assert profile.num_filtered_out == {"healthy-filter": 1}


@pytest.mark.parametrize(
    ("kind", "plugin", "message"),
    [
        ("scorers", PluginConfig("nope"), "unknown scorer 'nope'"),
        ("scorers", PluginConfig("session-affinity-scorer", params={"bogus": 1}),
         "params.bogus: unknown param"),
        ("scorers", PluginConfig("session-affinity-scorer", params={"load_factor": "x"}),
         "params.load_factor: Input should be a valid number"),
        ("scorers", PluginConfig("session-affinity-scorer", params={"load_factor": 0.5}),
         "load_factor must be >= 1"),
        ("picker", PluginConfig("max-score-picker", params={"name": "x"}), "params.name"),
        ("filters", PluginConfig("gpu-class-filter", params={"gpus": 3}), "params.gpus"),
    ],
)  # fmt: skip
def test_plugin_params_are_validated(kind: str, plugin: PluginConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        build_plugin(kind, plugin, "routing.profiles.p.x[0]")


@pytest.mark.parametrize(
    ("priority", "expected"),
    [(10, ["idle", "queued", "kv-busy"]), (5, ["idle", "queued"]), (0, ["idle"])],
)
def test_saturation_filter_reserves_headroom_for_higher_bands(
    priority: int, expected: list[str]
) -> None:
    from gpufleet.routing.filters import SaturationFilter

    endpoints = [
        ep("idle", num_waiting=0, kv_usage=0.5),
        ep("queued", num_waiting=3, kv_usage=0.6),
        ep("kv-busy", num_waiting=0, kv_usage=0.9),
        ep("full", num_waiting=9, kv_usage=0.5),
    ]
    kept = SaturationFilter().filter(RouteRequest(model="m", priority=priority), endpoints)
    assert [e.id for e in kept] == expected


@pytest.mark.parametrize(
    ("priority", "params", "top_in_flight", "expected"),
    [
        (0, {}, 10, ["2", "6", "40"]),  # unlimited by default
        (0, {"low_max_in_flight": 6}, 10, ["2"]),
        (-5, {"low_max_in_flight": 6}, 10, ["2"]),
        (10, {"low_max_in_flight": 6}, 10, ["2", "6", "40"]),
        (5, {"low_max_in_flight": 6}, 10, ["2", "6", "40"]),  # halfway to unlimited
        (5, {"low_max_in_flight": 6, "max_in_flight": 10}, 10, ["2", "6"]),  # cap 8
        (10, {"low_max_in_flight": 6, "max_in_flight": 10}, 10, ["2", "6"]),
        # no higher band in flight anywhere: every band gets max_in_flight
        (0, {"low_max_in_flight": 6}, 0, ["2", "6", "40"]),
        (0, {"low_max_in_flight": 6}, None, ["2", "6", "40"]),
        (0, {"low_max_in_flight": 6, "max_in_flight": 10}, None, ["2", "6"]),
        (5, {"low_max_in_flight": 6}, 5, ["2", "6", "40"]),  # its own band does not count
        (0, {"low_max_in_flight": 6}, 5, ["2"]),  # any higher band does
    ],
)
def test_saturation_filter_caps_in_flight_per_band_while_a_higher_band_is_in_flight(
    priority: int, params: dict[str, float], top_in_flight: int | None, expected: list[str]
) -> None:
    from gpufleet.routing.filters import SaturationFilter

    endpoints = [ep(str(n), num_in_flight=n) for n in (2, 6, 40)]
    if top_in_flight is not None:  # one request of that band in flight on the busiest
        endpoints[2] = ep("40", num_in_flight=40, max_priority_in_flight=top_in_flight)
    kept = SaturationFilter(**params).filter(RouteRequest(model="m", priority=priority), endpoints)
    assert [e.id for e in kept] == expected
