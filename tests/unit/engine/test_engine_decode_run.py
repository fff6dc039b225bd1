"""Decode runs: many decode-only steps in one call give exactly what stepping one at a time gives.

Two engines get the same requests at the same times; one is stepped one step at
a time, the other advanced by decode runs settled at random points (as the
simulator settles them at dispatches and scrapes). Step start times, first
tokens and finishes must agree float for float, and so must the KV pools
(free-queue order, prefix-cache entries, every request's block table), and
the gauges a scrape reads in the middle of a run must be those of the settled
engine at that instant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.engine.config import EngineConfig, SpeculativeConfig
from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.latency import RooflineLatency, StepShape
from gpufleet.engine.request import EngineRequest, SyntheticPrompt
from gpufleet.plan.catalog import Catalog

CATALOG = Catalog.load()
LATENCY = RooflineLatency(CATALOG.model("llama-3-8b"), CATALOG.gpu("h100-sxm"))
MOE_LATENCY = RooflineLatency(CATALOG.model("mixtral-8x7b"), CATALOG.gpu("h100-sxm"), tp=2)


@dataclass(frozen=True)
class Scenario:
    config: EngineConfig
    arrivals: tuple[tuple[float, EngineRequest], ...]
    settle_seed: int
    moe: bool


@st.composite
def scenarios(draw: st.DrawFn, spare: int = 3, moe: bool | None = None) -> Scenario:
    """Random requests (some sharing a prefix) on a KV pool of one sequence's blocks plus
    up to ``spare`` times more; ``moe`` None: either latency model."""
    block_size = draw(st.sampled_from([1, 4, 16]))
    max_model_len = draw(st.integers(32, 256))
    needed = -(-max_model_len // block_size)
    config = EngineConfig(
        num_gpu_blocks=needed + 1 + draw(st.integers(0, spare * needed)),
        max_model_len=max_model_len,
        block_size=block_size,
        max_num_batched_tokens=draw(st.integers(8, 256)),
        max_num_seqs=draw(st.integers(1, 12)),
        enable_prefix_caching=draw(st.booleans()),
    )
    arrivals = []
    t = 0.0
    shared = draw(st.integers(1, 40))
    for i in range(draw(st.integers(1, 25))):
        t += draw(st.floats(0.0, 0.05))
        prompt_len = draw(st.integers(1, max_model_len - 1))
        max_tokens = draw(st.integers(1, max_model_len - prompt_len))
        if draw(st.booleans()) and prompt_len > shared:
            segments: tuple[tuple[int, int], ...] = ((7, shared), (100 + i, prompt_len - shared))
        else:
            segments = ((100 + i, prompt_len),)
        arrivals.append((t, EngineRequest(f"r{i}", SyntheticPrompt(segments), max_tokens)))
    seed = draw(st.integers(0, 2**31))
    return Scenario(config, tuple(arrivals), seed, draw(st.booleans()) if moe is None else moe)


Trace = list[tuple[str, str, float]]


def stepped(scenario: Scenario, latency: RooflineLatency) -> tuple[EngineModel, Trace]:
    engine = EngineModel(scenario.config, latency)
    pending = list(scenario.arrivals)
    trace: Trace = []
    t = 0.0
    while pending or engine.has_work:
        while pending and pending[0][0] <= t:
            engine.add_request(pending.pop(0)[1])
        if not engine.has_work:
            t = pending[0][0]
            continue
        result = engine.step(t)
        trace.append(("step", "", t))
        trace += [("first", rid, result.end_s) for rid in result.first_token_ids]
        trace += [("finish", rid, result.end_s) for rid in result.finished_ids]
        t = result.end_s
    return engine, trace


def with_runs(
    scenario: Scenario, latency: RooflineLatency, max_steps: tuple[int, ...] = (1, 3, 4096)
) -> tuple[EngineModel, Trace, int]:
    engine = EngineModel(scenario.config, latency)
    rng = random.Random(scenario.settle_seed)
    pending = list(scenario.arrivals)
    trace: Trace = []
    num_runs = 0
    t = 0.0
    while pending or engine.has_work:
        while pending and pending[0][0] <= t:
            engine.add_request(pending.pop(0)[1])
        if not engine.has_work:
            t = pending[0][0]
            continue
        end = engine.start_decode_run(t, max_steps=rng.choice(max_steps))
        if end is None:
            result = engine.step(t)
            trace.append(("step", "", t))
            trace += [("first", rid, result.end_s) for rid in result.first_token_ids]
            trace += [("finish", rid, result.end_s) for rid in result.finished_ids]
            t = result.end_s
            continue
        num_runs += 1
        settle_at = end
        if pending and pending[0][0] < end:
            settle_at = pending[0][0]  # a dispatch interrupts the run
        if rng.random() < 0.3:
            settle_at = rng.uniform(t, settle_at)  # a scrape settles it early
        run = engine._run
        assert run is not None
        starts = run.starts[: run.num_started(settle_at)]
        trace += [("step", "", s) for s in starts]
        load_then = engine.load_at(settle_at)  # a scrape reads the gauges mid-run
        t, finished = engine.settle(settle_at)
        trace += [("finish", rid, t) for rid in finished]
        assert load_then == engine.load or (load_then is None and finished)
    return engine, trace, num_runs


def pool_state(engine: EngineModel) -> tuple[object, ...]:
    pool = engine._scheduler.pool
    return (pool.free_queue(), dict(pool._cached), list(pool._ref_count), list(pool._block_hash))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_decode_runs_match_stepping_exactly(scenario: Scenario) -> None:
    latency = MOE_LATENCY if scenario.moe else LATENCY
    reference, expected = stepped(scenario, latency)
    fast, actual, _ = with_runs(scenario, latency)
    assert actual == expected
    assert fast.stats == reference.stats
    assert pool_state(fast) == pool_state(reference)


def test_a_long_decode_batch_takes_few_calls_and_the_same_times() -> None:
    config = EngineConfig(num_gpu_blocks=2000, max_model_len=4096, max_num_batched_tokens=2048)
    arrivals = tuple(
        (0.0, EngineRequest(f"r{i}", SyntheticPrompt(((i, 300 + 50 * i),)), 200 + 100 * i))
        for i in range(8)
    )
    scenario = Scenario(config, arrivals, settle_seed=1, moe=False)
    reference, expected = stepped(scenario, LATENCY)
    fast, actual, num_runs = with_runs(scenario, LATENCY, max_steps=(4096,))
    assert actual == expected
    assert fast.stats == reference.stats
    assert reference.stats.num_steps > 900
    assert num_runs <= 20  # one run per finish (8), plus early settles


def test_decode_terms_are_the_step_time_of_a_decode_step() -> None:
    for latency in (LATENCY, MOE_LATENCY):
        for num_seqs, context in ((1, 10), (7, 3000), (256, 500_000)):
            linear, per_token, comm, fixed = latency.decode_terms(num_seqs)
            shape = StepShape(
                num_decode_tokens=num_seqs,
                num_decode_seqs=num_seqs,
                num_attention_pairs=context,
                num_kv_read_tokens=context,
            )
            assert linear + context * per_token + comm + fixed == latency.step_time_s(shape)


def test_no_run_when_the_next_step_is_not_a_plain_decode() -> None:
    config = EngineConfig(num_gpu_blocks=200, max_model_len=512)
    engine = EngineModel(config, LATENCY)
    engine.add_request(EngineRequest("a", (1, 2, 3, 4), 50))
    assert engine.start_decode_run(0.0) is None  # "a" waits: the step admits it
    t = engine.step(0.0).end_s
    end = engine.start_decode_run(t)
    assert end is not None and end > t
    with pytest.raises(RuntimeError, match="settle"):
        engine.add_request(EngineRequest("b", (1, 2), 5))
    with pytest.raises(RuntimeError, match="settle"):
        engine.step(t)
    t, finished = engine.settle(end)
    assert finished == ("a",) and not engine.has_work
    with pytest.raises(RuntimeError, match="no decode run"):
        engine.settle(t)
    spec = EngineConfig(
        num_gpu_blocks=200, max_model_len=512, speculative=SpeculativeConfig(2, 0.5)
    )
    engine = EngineModel(spec, LATENCY)
    engine.add_request(EngineRequest("a", (1, 2, 3, 4), 50))
    t = engine.step(0.0).end_s
    assert engine.start_decode_run(t) is None  # speculative decoding steps one at a time
