"""Private blocks: a prompt that promises ``unique_from`` changes the engine's cost, not its
behaviour.

The same requests run twice, once with their prompts' promise (blocks from there on kept
private: counted, never hashed) and once without it (every block hashed and cached).
Step times, first tokens, finishes and every counter a scrape reads — prefix-cache hits
and queries, preemptions, free blocks — must agree exactly, stepping one step at a time
and with decode runs. The scenarios use small KV pools, so requests are preempted (a
preempted request's private blocks get ids and hashes: its own lookups need them) and
cached blocks are evicted.
"""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings

from gpufleet.engine.config import EngineConfig
from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.kv_cache import KvBlockPool
from gpufleet.engine.request import EngineRequest, SyntheticPrompt
from tests.unit.engine.test_engine_decode_run import (
    LATENCY,
    Scenario,
    scenarios,
    stepped,
    with_runs,
)


def promising(scenario: Scenario) -> Scenario:
    """The scenario's prompts with their promise: a prompt's last segment is its own."""
    arrivals = []
    for t, request in scenario.arrivals:
        prompt = request.prompt_token_ids
        assert isinstance(prompt, SyntheticPrompt)
        unique_from = prompt.num_tokens - prompt.segments[-1][1]
        private = SyntheticPrompt(prompt.segments, unique_from=unique_from)
        arrivals.append((t, dataclasses.replace(request, prompt_token_ids=private)))
    return dataclasses.replace(scenario, arrivals=tuple(arrivals))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(spare=2, moe=False))
def test_private_blocks_change_nothing_but_the_cost(scenario: Scenario) -> None:
    reference, expected = stepped(scenario, LATENCY)
    private = promising(scenario)
    stepping, actual = stepped(private, LATENCY)
    assert actual == expected
    assert stepping.stats == reference.stats
    riding, ridden, _ = with_runs(private, LATENCY)
    assert ridden == expected
    assert riding.stats == reference.stats


def test_a_unique_prompt_is_counted_not_hashed_until_preempted() -> None:
    config = EngineConfig(num_gpu_blocks=9, max_model_len=32, block_size=4)
    engine = EngineModel(config, LATENCY)
    engine.add_request(EngineRequest("b", SyntheticPrompt(((3, 12),)), 16))  # no promise
    engine.add_request(EngineRequest("a", SyntheticPrompt(((1, 8), (2, 8)), unique_from=8), 12))
    t = engine.step(0.0).end_s  # both admitted: b 3 blocks, a 4, one block left
    scheduler = engine._scheduler
    pool = scheduler.pool
    _, a = scheduler.running
    assert (len(a.block_ids), a.num_private) == (2, 2)  # 2 blocks may be shared, 2 private
    assert pool.num_cached_blocks == 3 + 2 and pool.num_free_blocks == 1
    result = engine.step(t)  # b takes the last block; a, the newest, is preempted
    assert result.preempted_ids == ("a",)
    assert a.num_private == 0 and a.block_ids == []
    assert pool.num_cached_blocks == 3 + 4  # its 4 full blocks, now hashed and cached
    assert pool.num_free_blocks == 4


def test_private_runs_are_evicted_in_lru_order_with_the_other_blocks() -> None:
    pool = KvBlockPool(10)
    ids = pool.allocate(2)
    pool.allocate_private(3)
    pool.cache_block(ids[0], 11)
    pool.cache_block(ids[1], 12)
    pool.free_private(3)  # the request's deepest blocks first
    pool.free(ids)
    assert pool.free_queue() == [3, 4, 5, 6, -1, -1, -1, 2, 1]
    assert pool.allocate(5) == [3, 4, 5, 6, 7]  # 4 never used, 1 from the run (new id)
    assert pool.free_queue() == [-1, -1, 2, 1]
    pool.allocate_private(3)  # the rest of the run, then block 2 (evicted, id spare)
    assert not pool.is_cached(12) and pool.is_cached(11)
    assert pool.allocate(1) == [1] and not pool.is_cached(11)
    assert pool.num_free_blocks == 0
    assert pool.adopt_private(1) == [2]  # the spare id
