"""Scripted scenarios with hand-computed expectations, step by step (vLLM V1 order).

Block size 4 keeps the arithmetic small. Free-queue block ids start as [1, 2, ...]
(block 0 is the null block); allocation pops the least recently freed block.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gpufleet.engine.config import EngineConfig, SpeculativeConfig
from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.latency import StepShape
from gpufleet.engine.request import EngineRequest


class FixedLatency:
    """Every non-empty step takes 10 ms."""

    def step_time_s(self, shape: StepShape) -> float:
        return 0.01 if shape.num_tokens else 0.0


@dataclass(frozen=True)
class Expect:
    advanced: tuple[tuple[str, int, int], ...]
    num_free_blocks: int
    admitted: tuple[str, ...] = ()
    first: tuple[str, ...] = ()
    finished: tuple[str, ...] = ()
    preempted: tuple[str, ...] = ()


def run_script(engine: EngineModel, script: list[Expect]) -> None:
    now = 0.0
    for number, expect in enumerate(script, 1):
        result = engine.step(now)
        got = Expect(
            advanced=result.advanced,
            num_free_blocks=engine.stats.num_free_blocks,
            admitted=result.admitted_ids,
            first=result.first_token_ids,
            finished=result.finished_ids,
            preempted=result.preempted_ids,
        )
        assert got == expect, f"step {number}"
        assert result.num_scheduled_tokens == sum(n for _, n, _ in result.advanced)
        now = result.end_s
    assert not engine.has_work


def test_chunked_prefill_and_prefix_hit_across_steps() -> None:
    """6 usable blocks, budget 8, max_num_seqs 3.

    1: A (6 tokens) is admitted whole and samples its first token; B gets the 2
       remaining budget tokens (a chunk) and outputs nothing. A caches block [1 2 3 4].
    2: A decodes; B finishes its prefill (3 tokens, +1 block) and samples; C is
       admitted with a 4-token prefix hit on A's first block (shared, ref 2), so it
       computes only 2 tokens.
    3: all decode; C reaches max_tokens 2 and finishes: its own block 5 is freed,
       the shared block 1 stays with A.
    4: A crosses into its third block (takes block 6, the oldest free one).
    5: A and B finish; everything is free again.
    """
    engine = EngineModel(
        EngineConfig(
            num_gpu_blocks=7,
            max_model_len=24,
            block_size=4,
            max_num_batched_tokens=8,
            max_num_seqs=3,
        ),
        FixedLatency(),
    )
    engine.add_request(EngineRequest("A", (1, 2, 3, 4, 5, 6), max_tokens=5))
    engine.add_request(EngineRequest("B", (11, 12, 13, 14, 15), max_tokens=4))
    engine.add_request(EngineRequest("C", (1, 2, 3, 4, 21, 22), max_tokens=2))
    run_script(
        engine,
        [
            Expect((("A", 6, 1), ("B", 2, 0)), 3, admitted=("A", "B"), first=("A",)),
            Expect((("A", 1, 1), ("B", 3, 1), ("C", 2, 1)), 1, admitted=("C",), first=("B", "C")),
            Expect((("A", 1, 1), ("B", 1, 1), ("C", 1, 1)), 2, finished=("C",)),
            Expect((("A", 1, 1), ("B", 1, 1)), 1),
            Expect((("A", 1, 1), ("B", 1, 1)), 6, finished=("A", "B")),
        ],
    )
    stats = engine.stats
    assert (stats.prefix_cache_queries_tokens, stats.prefix_cache_hits_tokens) == (17, 4)
    assert stats.num_generation_tokens_total == 11
    assert stats.num_prompt_tokens_total == 17
    assert stats.num_requests_finished == 3


def test_preemption_of_the_newest_and_recompute() -> None:
    """4 usable blocks, budget 16, max_num_seqs 4, prefix caching on.

    1: A, B (4-token prompts) and C (2 tokens, max 1) are admitted; C finishes.
    2: A and B cross into their second block (blocks 4 and 3): no block is free.
    5: both fill their second block (cached).
    6: A needs a third block; none is free, so the newest running request, B, is
       preempted: its blocks are freed tail-first (3 then 2), it goes back to
       waiting with 0 computed tokens. A takes block 3 (evicting B's output block);
       B's prompt block 2 stays cached. Nothing is admitted in a preempting step.
    7, 8: B (9 tokens: 4 prompt + 5 outputs to recompute) needs 3 blocks but only
       block 2 is free: it waits at the head of the queue.
    9: A has finished and freed its blocks; B is re-admitted with a 4-token hit on
       its surviving prompt block, recomputes 5 tokens and samples its 6th output.
    """
    engine = EngineModel(
        EngineConfig(
            num_gpu_blocks=5,
            max_model_len=16,
            block_size=4,
            max_num_batched_tokens=16,
            max_num_seqs=4,
        ),
        FixedLatency(),
    )
    engine.add_request(EngineRequest("A", (1, 2, 3, 4), max_tokens=8))
    engine.add_request(EngineRequest("B", (5, 6, 7, 8), max_tokens=8))
    engine.add_request(EngineRequest("C", (9, 10), max_tokens=1))
    decode_ab = (("A", 1, 1), ("B", 1, 1))
    run_script(
        engine,
        [
            Expect(
                (("A", 4, 1), ("B", 4, 1), ("C", 2, 1)),
                2,
                admitted=("A", "B", "C"),
                first=("A", "B", "C"),
                finished=("C",),
            ),
            Expect(decode_ab, 0),
            Expect(decode_ab, 0),
            Expect(decode_ab, 0),
            Expect(decode_ab, 0),
            Expect((("A", 1, 1),), 1, preempted=("B",)),
            Expect((("A", 1, 1),), 1),
            Expect((("A", 1, 1),), 4, finished=("A",)),
            Expect((("B", 5, 1),), 1, admitted=("B",)),
            Expect((("B", 1, 1),), 1),
            Expect((("B", 1, 1),), 4, finished=("B",)),
        ],
    )
    stats = engine.stats
    assert stats.num_preemptions == 1
    assert (stats.prefix_cache_queries_tokens, stats.prefix_cache_hits_tokens) == (10, 0)
    assert stats.preempted_prefix_cache_queries_tokens == 9
    assert stats.preempted_prefix_cache_hits_tokens == 4
    assert stats.num_generation_tokens_total == 17


def test_preempted_request_state_and_queue_position() -> None:
    engine = EngineModel(
        EngineConfig(num_gpu_blocks=5, max_model_len=16, block_size=4, max_num_seqs=4),
        FixedLatency(),
    )
    engine.add_request(EngineRequest("A", (1, 2, 3, 4), max_tokens=8))
    engine.add_request(EngineRequest("B", (5, 6, 7, 8), max_tokens=8))
    engine.add_request(EngineRequest("C", (9, 10), max_tokens=1))
    results = [engine.step(0.0) for _ in range(6)]
    assert results[-1].preempted_ids == ("B",)
    progress = engine.request_progress("B")
    assert progress is not None
    assert (progress.status, progress.num_computed_tokens, progress.num_blocks) == ("waiting", 0, 0)
    assert (progress.num_output_tokens, progress.num_preemptions) == (5, 1)
    assert engine.stats.kv_cache_usage_perc == 0.75  # 1 − 1 free / (5 − 1)


def test_lora_adapter_that_cannot_join_waits_at_the_front() -> None:
    """max_loras 1: x1 (adapter a) runs; y (adapter b) cannot join the batch, is skipped
    but stays first in line; x2 (adapter a) is admitted past it. y runs once no request
    uses a, and its step pays the adapter load time."""
    engine = EngineModel(
        EngineConfig(num_gpu_blocks=64, max_model_len=32, max_loras=1, lora_load_s=0.5),
        FixedLatency(),
    )
    engine.add_request(EngineRequest("x1", (1, 2, 3), max_tokens=2, lora="a"))
    engine.add_request(EngineRequest("y", (4, 5, 6), max_tokens=1, lora="b"))
    engine.add_request(EngineRequest("x2", (7, 8, 9), max_tokens=2, lora="a"))
    first = engine.step(0.0)
    assert first.admitted_ids == ("x1", "x2")
    assert first.loaded_loras == ("a",)
    assert first.duration_s == 0.01 + 0.5
    assert engine.stats.waiting_lora_adapters == ("b",)
    assert engine.stats.running_lora_adapters == ("a",)
    second = engine.step(first.end_s)
    assert second.finished_ids == ("x1", "x2")
    assert second.loaded_loras == ()
    assert second.admitted_ids == ()
    third = engine.step(second.end_s)
    assert third.admitted_ids == ("y",)
    assert third.loaded_loras == ("b",)
    assert third.finished_ids == ("y",)
    assert not engine.has_work


def test_speculative_decoding_expected_tokens_per_step() -> None:
    spec = SpeculativeConfig(num_draft_tokens=3, acceptance_rate=0.8)
    expected = (1 - 0.8**4) / (1 - 0.8)
    assert spec.expected_tokens(4) == expected
    engine = EngineModel(
        EngineConfig(num_gpu_blocks=64, max_model_len=512, speculative=spec), FixedLatency()
    )
    engine.add_request(EngineRequest("s", tuple(range(10)), max_tokens=301))
    prefill = engine.step(0.0)
    assert prefill.advanced == (("s", 10, 1),)
    emitted: list[int] = []
    verified: list[int] = []
    while engine.has_work:
        result = engine.step(0.0)
        ((_, num_verified, num_out),) = result.advanced
        verified.append(num_verified)
        emitted.append(num_out)
    assert sum(emitted) == 300
    assert set(verified) == {4}
    assert abs(len(emitted) - 300 / expected) < 1.5
    assert max(emitted) <= 4 and min(emitted) >= 1


def test_abort_frees_blocks_and_forgets_the_request() -> None:
    engine = EngineModel(
        EngineConfig(num_gpu_blocks=9, max_model_len=16, block_size=4), FixedLatency()
    )
    engine.add_request(EngineRequest("r", (1, 2, 3, 4, 5), max_tokens=4))
    engine.add_request(EngineRequest("w", (1, 2), max_tokens=4))
    engine.step(0.0)
    assert engine.stats.num_free_blocks < 8
    assert engine.abort("r") and engine.abort("w")
    assert not engine.abort("r")
    assert engine.request_progress("r") is None
    assert engine.stats.num_free_blocks == 8
    assert engine.stats.num_requests_aborted == 2
    assert not engine.has_work


def test_add_request_validation() -> None:
    engine = EngineModel(
        EngineConfig(num_gpu_blocks=9, max_model_len=16, block_size=4), FixedLatency()
    )
    engine.add_request(EngineRequest("a", (1, 2), max_tokens=14))
    with pytest.raises(ValueError, match="already"):
        engine.add_request(EngineRequest("a", (1,), max_tokens=1))
    with pytest.raises(ValueError, match="max_model_len=16"):
        engine.add_request(EngineRequest("b", (1, 2, 3), max_tokens=14))
    with pytest.raises(ValueError, match="LoRA"):
        engine.add_request(EngineRequest("c", (1,), max_tokens=1, lora="x"))
    with pytest.raises(ValueError, match="cannot hold one sequence"):
        EngineConfig(num_gpu_blocks=4, max_model_len=16, block_size=4)
