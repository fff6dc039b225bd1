"""Workload generators: reproducible, lengths as asked, multi-turn history and shared prefixes."""

from __future__ import annotations

import itertools
import random
import statistics
from collections import Counter, defaultdict

import pytest

from gpufleet.workload import (
    Fixed,
    LogNormal,
    MultiTurnWorkload,
    Poisson,
    RequestSpec,
    SyntheticWorkload,
    TrafficClass,
    Uniform,
    estimate_tokens,
    parse_length,
    synthetic_text,
)
from gpufleet.workload.spec import Workload


def take(workload: Workload, count: int, seed: int = 0) -> list[RequestSpec]:
    return list(itertools.islice(workload.requests(seed), count))


def synthetic(**kwargs: object) -> SyntheticWorkload:
    defaults: dict[str, object] = {
        "arrivals": Poisson(10.0),
        "prompt_tokens": Fixed(32),
        "output_tokens": Fixed(8),
    }
    return SyntheticWorkload(**{**defaults, **kwargs})  # type: ignore[arg-type]


def test_same_seed_same_specs_other_seed_other_specs() -> None:
    workload = synthetic(prompt_tokens=Uniform(5, 50))
    first, again, other = take(workload, 50), take(workload, 50), take(workload, 50, seed=1)
    assert first == again
    assert [s.messages for s in first] == [s.messages for s in again]
    assert [s.arrival_s for s in first] != [s.arrival_s for s in other]
    assert [s.messages for s in first] != [s.messages for s in other]


def test_arrival_times_do_not_depend_on_lengths() -> None:
    short, long = take(synthetic(), 20), take(synthetic(prompt_tokens=Fixed(500)), 20)
    assert [s.arrival_s for s in short] == [s.arrival_s for s in long]


def test_specs_in_order_from_start_time() -> None:
    specs = list(itertools.islice(synthetic().requests(0, start_s=100.0), 100))
    assert [s.index for s in specs] == list(range(100))
    assert all(100.0 < a.arrival_s <= b.arrival_s for a, b in itertools.pairwise(specs))


def test_synthetic_prompt_text_has_the_estimated_length() -> None:
    for spec in take(synthetic(prompt_tokens=Uniform(1, 300)), 200):
        assert estimate_tokens(spec.prompt) == spec.num_prompt_tokens
        assert spec.messages[0].role == "user"
    assert synthetic_text(0, random.Random(0)) == ""


def test_length_distributions() -> None:
    rng = random.Random(3)
    assert {Uniform(3, 5).sample(rng) for _ in range(200)} == {3, 4, 5}
    draws = [LogNormal(200, 0.5).sample(rng) for _ in range(40_000)]
    assert statistics.mean(draws) == pytest.approx(200, rel=0.02)
    assert statistics.stdev(draws) / statistics.mean(draws) == pytest.approx(0.5, rel=0.05)
    assert max(LogNormal(200, 2.0, max_value=300).sample(rng) for _ in range(2000)) == 300


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("128", Fixed(128)),
        ("fixed:7", Fixed(7)),
        ("uniform:1,9", Uniform(1, 9)),
        ("lognormal:512,0.8", LogNormal(512, 0.8)),
        ("lognormal:512,0.8,4096", LogNormal(512, 0.8, 4096)),
    ],
)
def test_parse_length(text: str, expected: object) -> None:
    assert parse_length(text) == expected


@pytest.mark.parametrize("text", ["", "0", "x", "uniform:5", "uniform:9,1", "normal:3", "1.5"])
def test_parse_length_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_length(text)


def test_traffic_classes_by_weight_carry_their_labels() -> None:
    classes = (
        TrafficClass("chat", 3.0, model="small", tenant="a", priority=10, request_class="fast"),
        TrafficClass("batch", 1.0, model="big", tenant="b"),
    )
    specs = take(synthetic(classes=classes), 8000)
    counts = Counter(s.traffic_class for s in specs)
    assert counts["chat"] / len(specs) == pytest.approx(0.75, abs=0.02)
    chat = next(s for s in specs if s.traffic_class == "chat")
    assert (chat.model, chat.tenant, chat.priority, chat.request_class) == (
        "small",
        "a",
        10,
        "fast",
    )
    batch = next(s for s in specs if s.traffic_class == "batch")
    assert (batch.model, batch.tenant, batch.priority) == ("big", "b", None)


def multi_turn(**kwargs: object) -> MultiTurnWorkload:
    defaults: dict[str, object] = {
        "arrivals": Poisson(10.0),
        "num_users": 4,
        "num_system_prompts": 2,
        "system_prompt_tokens": 100,
        "turns_per_conversation": 3,
        "user_tokens": Fixed(10),
        "output_tokens": Fixed(20),
    }
    return MultiTurnWorkload(**{**defaults, **kwargs})  # type: ignore[arg-type]


def test_multi_turn_history_grows_by_each_exchange() -> None:
    specs = take(multi_turn(), 40)
    by_session: defaultdict[str, list[RequestSpec]] = defaultdict(list)
    for spec in specs:
        assert spec.session_id is not None
        by_session[spec.session_id].append(spec)
    assert len(by_session) > 4, "users start new conversations after 3 turns"
    for turns in by_session.values():
        assert len(turns) <= 3
        for turn, spec in enumerate(turns):
            roles = [m.role for m in spec.messages]
            assert roles == ["system", *["user", "assistant"] * turn, "user"]
            assert spec.num_prompt_tokens == sum(estimate_tokens(m.content) for m in spec.messages)
        for before, after in itertools.pairwise(turns):
            # the next turn repeats the whole previous prompt, then the reply, then a new message
            assert after.messages[: len(before.messages)] == before.messages
            assert estimate_tokens(after.messages[-2].content) == before.max_tokens
            assert after.num_prompt_tokens == before.num_prompt_tokens + 20 + 10


def test_multi_turn_users_share_a_few_system_prompts_round_robin() -> None:
    specs = take(multi_turn(num_users=6, num_system_prompts=3), 60)
    systems = {s.messages[0].content for s in specs}
    assert len(systems) == 3
    assert all(s.messages[0].role == "system" for s in specs)
    assert all(estimate_tokens(text) >= 100 for text in systems)
    users = [s.session_id.split("-")[1] for s in specs if s.session_id]
    assert users[:12] == [f"u{i}" for i in range(6)] * 2, "users take arrivals in turn"
    sessions_per_system = Counter(s.messages[0].content for s in specs if s.index < 6)
    assert sorted(sessions_per_system.values()) == [2, 2, 2]


def test_multi_turn_conversation_restarts_before_exceeding_the_prompt_cap() -> None:
    specs = take(multi_turn(turns_per_conversation=100, max_prompt_tokens=250), 100)
    assert max(s.num_prompt_tokens for s in specs) <= 250
    assert len({s.session_id for s in specs}) > 4


def test_multi_turn_is_reproducible() -> None:
    assert take(multi_turn(), 30, seed=4) == take(multi_turn(), 30, seed=4)
    first = take(multi_turn(), 30, seed=4)
    assert [s.messages for s in first] == [s.messages for s in take(multi_turn(), 30, seed=4)]


def test_reprs_never_show_prompts() -> None:
    spec = take(multi_turn(), 1)[0]
    assert spec.messages[-1].content not in repr(spec)
    assert spec.messages[-1].content not in repr(spec.messages[-1])
