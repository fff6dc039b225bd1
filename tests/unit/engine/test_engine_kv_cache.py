"""The block pool: null block, LRU free queue, tail-first freeing, eviction, usage."""

from __future__ import annotations

import pytest

from gpufleet.engine.config import EngineConfig
from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.kv_cache import KvBlockPool
from gpufleet.engine.latency import StepShape
from gpufleet.engine.request import EngineRequest, SyntheticPrompt


class FixedLatency:
    def step_time_s(self, shape: StepShape) -> float:
        return 0.01 if shape.num_tokens else 0.0


def test_null_block_is_reserved_and_usage_formula() -> None:
    pool = KvBlockPool(5)
    assert pool.num_free_blocks == 4
    assert pool.usage == 0.0
    blocks = pool.allocate(3)
    assert blocks == [1, 2, 3]
    assert pool.usage == 1 - 1 / 4
    with pytest.raises(ValueError):
        KvBlockPool(1)


def test_tail_first_free_evicts_deepest_blocks_first() -> None:
    pool = KvBlockPool(6)
    blocks = pool.allocate(3)  # [1, 2, 3], a request's chain
    for block, block_hash in zip(blocks, (101, 102, 103), strict=True):
        pool.cache_block(block, block_hash)
    pool.free(blocks)
    assert pool.num_free_blocks == 5  # cached but unreferenced blocks count as free
    assert pool.cached_prefix([101, 102, 103], 3) == [1, 2, 3]
    # free queue is now [4, 5, 3, 2, 1]: fresh blocks go first, then the chain's tail
    assert pool.allocate(3) == [4, 5, 3]
    assert not pool.is_cached(103)
    assert pool.cached_prefix([101, 102, 103], 3) == [1, 2]


def test_prefix_hit_revives_a_free_block() -> None:
    pool = KvBlockPool(4)
    (block,) = pool.allocate(1)
    pool.cache_block(block, 7)
    pool.free([block])
    hits = pool.cached_prefix([7], 1)
    assert pool.num_free_among(hits) == 1
    pool.touch(hits)
    assert pool.ref_count(block) == 1
    assert pool.num_free_blocks == 2
    pool.touch(hits)
    pool.free(hits)
    assert pool.ref_count(block) == 1


def test_duplicate_hash_keeps_first_block_and_caching_can_be_off() -> None:
    pool = KvBlockPool(4)
    a, b = pool.allocate(2)
    pool.cache_block(a, 9)
    pool.cache_block(b, 9)
    assert pool.cached_prefix([9], 1) == [a]
    off = KvBlockPool(4, enable_caching=False)
    (c,) = off.allocate(1)
    off.cache_block(c, 9)
    assert off.cached_prefix([9], 1) == []


def test_synthetic_prompts_share_exactly_their_common_segments() -> None:
    engine = EngineModel(
        EngineConfig(num_gpu_blocks=256, max_model_len=1024, max_num_batched_tokens=4096),
        FixedLatency(),
    )
    system = (42, 100)
    engine.add_request(EngineRequest("a", SyntheticPrompt((system, (1, 50))), max_tokens=4))
    engine.add_request(EngineRequest("b", SyntheticPrompt((system, (2, 50))), max_tokens=4))
    engine.add_request(EngineRequest("c", SyntheticPrompt(((42, 40), (3, 50))), max_tokens=4))
    engine.step(0.0)
    hits = {rid: engine.request_progress(rid) for rid in "abc"}
    assert {rid: p.num_cached_prompt_tokens for rid, p in hits.items() if p} == {
        "a": 0,
        "b": 96,  # 6 full blocks of the shared 100-token segment
        "c": 32,  # (42, 40) agrees with (42, 100) on its first 40 tokens: 2 full blocks
    }


def test_synthetic_and_explicit_prompts_hit_alike() -> None:
    prompt_a = SyntheticPrompt(((5, 70), (6, 30)))
    prompt_b = SyntheticPrompt(((5, 70), (7, 30)))
    hits = []
    for a, b in ((prompt_a, prompt_b), (prompt_a.token_ids(1000), prompt_b.token_ids(1000))):
        engine = EngineModel(
            EngineConfig(num_gpu_blocks=64, max_model_len=512, max_num_batched_tokens=4096),
            FixedLatency(),
        )
        engine.add_request(EngineRequest("a", a, max_tokens=2))
        engine.add_request(EngineRequest("b", b, max_tokens=2))
        engine.step(0.0)
        progress = engine.request_progress("b")
        assert progress is not None
        hits.append(progress.num_cached_prompt_tokens)
    assert hits == [64, 64]


def test_identical_prompts_share_prompt_blocks_but_not_output_blocks() -> None:
    engine = EngineModel(
        EngineConfig(num_gpu_blocks=80, max_model_len=64, block_size=4), FixedLatency()
    )
    prompt = tuple(range(8))
    engine.add_request(EngineRequest("x", prompt, max_tokens=20))
    engine.step(0.0)
    engine.add_request(EngineRequest("y", prompt, max_tokens=20))
    for _ in range(12):
        engine.step(0.0)
    x, y = engine._seqs["x"], engine._seqs["y"]
    assert engine.request_progress("y").num_cached_prompt_tokens == 4  # type: ignore[union-attr]
    # hit capped at num_tokens − 1 = 7 tokens → one block shared, then own blocks
    assert x.block_ids[0] == y.block_ids[0]
    assert x.block_hashes[1] == y.block_hashes[1]  # same prompt tokens, same hash ...
    assert x.block_ids[1] != y.block_ids[1]  # ... but y recomputed it into its own block
    assert x.block_hashes[2] != y.block_hashes[2]  # output blocks differ by request
    assert all(engine._scheduler.pool.is_cached(h) for h in x.block_hashes[:3])
