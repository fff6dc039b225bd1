"""The decision ring: bounded, newest first, candidates in ranked order with their scores."""

from __future__ import annotations

import pytest

from gpufleet.gateway.decision_log import DecisionLog
from gpufleet.types import Endpoint, RouteRequest, RoutingDecision


def decision(chosen: str, other: str, score: float) -> RoutingDecision:
    return RoutingDecision(
        endpoint=Endpoint(chosen),
        fallbacks=(Endpoint(other),),
        scores={chosen: score, other: score / 2},
        num_candidates=3,
    )


def test_keeps_the_last_n_newest_first() -> None:
    log = DecisionLog(capacity=3)
    for index in range(5):
        log.record(RouteRequest(model="m", priority=index), decision(f"e{index}", "x", 0.5))
    log.record(RouteRequest(model="m"), None)
    assert len(log) == 3
    recent = log.recent()
    assert [d["chosen"] for d in recent] == ["e4", "e3", "e2"]
    assert [d["priority"] for d in log.recent(limit=2)] == [4, 3]
    assert recent[0]["num_candidates"] == 3
    assert recent[0]["scores"] == [
        {"endpoint": "e4", "score": 0.5},
        {"endpoint": "x", "score": 0.25},
    ]


def test_only_the_best_ranked_scores_are_listed() -> None:
    log = DecisionLog()
    others = tuple(Endpoint(f"e{i}") for i in range(20))
    log.record(
        RouteRequest(model="m"),
        RoutingDecision(
            endpoint=Endpoint("best"),
            fallbacks=others,
            scores={"best": 1.0, **{e.id: 0.5 for e in others}},
            num_candidates=21,
        ),
    )
    (entry,) = log.recent()
    assert entry["num_candidates"] == 21
    assert [s["endpoint"] for s in entry["scores"]] == ["best", *(f"e{i}" for i in range(7))]


def test_the_prompt_is_not_kept() -> None:
    log = DecisionLog()
    request = RouteRequest(model="m", adapter="lora", prompt_text="secret prompt " * 1000)
    log.record(request, decision("a", "b", 1.0))
    assert "secret prompt" not in repr(log._ring) + repr(log.recent())
    assert log.recent()[0]["adapter"] == "lora"


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DecisionLog(capacity=0)
