"""Scheduler invariants under random workloads (hypothesis)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.engine.config import EngineConfig, SpeculativeConfig
from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.latency import StepShape
from gpufleet.engine.request import EngineRequest

MAX_STEPS = 5_000


class FixedLatency:
    def step_time_s(self, shape: StepShape) -> float:
        return 0.001 if shape.num_tokens else 0.0


@dataclass(frozen=True)
class Planned:
    request: EngineRequest
    arrival_step: int
    abort_step: int | None


@dataclass(frozen=True)
class Workload:
    config: EngineConfig
    planned: tuple[Planned, ...]


@st.composite
def workloads(draw: st.DrawFn) -> Workload:
    block_size = draw(st.sampled_from([1, 2, 4, 8, 16]))
    max_model_len = draw(st.integers(4, 64))
    spec = draw(
        st.none()
        | st.builds(
            SpeculativeConfig,
            num_draft_tokens=st.integers(1, 4),
            acceptance_rate=st.floats(0.0, 1.0),
        )
    )
    lookahead = spec.num_draft_tokens if spec else 0
    needed = -(-(max_model_len + lookahead) // block_size)
    max_loras = draw(st.integers(0, 2))
    config = EngineConfig(
        num_gpu_blocks=needed + 1 + draw(st.integers(0, needed)),
        max_model_len=max_model_len,
        block_size=block_size,
        max_num_batched_tokens=draw(st.integers(1, 48)),
        max_num_seqs=draw(st.integers(1, 6)),
        enable_prefix_caching=draw(st.booleans()),
        max_loras=max_loras,
        lora_load_s=0.01,
        speculative=spec,
    )
    prefixes = draw(st.lists(st.lists(st.integers(0, 3), max_size=40), min_size=1, max_size=3))
    planned: list[Planned] = []
    for index in range(draw(st.integers(1, 12))):
        max_tokens = draw(st.integers(1, max(1, min(12, max_model_len - 1))))
        room = max_model_len - max_tokens
        prefix = draw(st.sampled_from(prefixes))[: room - 1]
        suffix = draw(st.lists(st.integers(100, 103), max_size=room - 1 - len(prefix)))
        # token 1000 + index never occurs elsewhere: request prefixes end there
        prompt = (*prefix, 1000 + index, *suffix)
        lora = draw(st.sampled_from([None, "a", "b"])) if max_loras else None
        request = EngineRequest(f"r{index}", prompt, max_tokens, lora=lora)
        abort_step = draw(st.none() | st.integers(0, 30))
        planned.append(Planned(request, draw(st.integers(0, 20)), abort_step))
    return Workload(config, tuple(planned))


def common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def check_block_accounting(engine: EngineModel) -> None:
    """White-box: reference counts equal holders; held + free = usable; no
    request holds more blocks than its computed tokens (+ look-ahead) need."""
    pool = engine._scheduler.pool
    config = engine.config
    lookahead = config.speculative.num_draft_tokens if config.speculative else 0
    holders: Counter[int] = Counter()
    for seq in engine._scheduler.running:
        assert len(set(seq.block_ids)) == len(seq.block_ids)
        holders.update(seq.block_ids)
        need = -(-seq.num_computed_tokens // config.block_size)
        most = -(-(seq.num_computed_tokens + lookahead) // config.block_size)
        assert need <= len(seq.block_ids) <= most
    for seq in engine._scheduler.waiting:
        assert seq.block_ids == [] and seq.num_computed_tokens == 0
    assert 0 not in holders  # the null block is never handed out
    for block in range(1, config.num_gpu_blocks):
        assert pool.ref_count(block) == holders[block]
    assert pool.num_free_blocks + len(holders) == config.num_gpu_blocks - 1
    assert 0.0 <= engine.stats.kv_cache_usage_perc <= 1.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_scheduler_invariants(workload: Workload) -> None:
    config = workload.config
    engine = EngineModel(config, FixedLatency())
    requests = {p.request.request_id: p.request for p in workload.planned}
    outputs: Counter[str] = Counter()
    finished: Counter[str] = Counter()
    aborted: set[str] = set()
    admitted_before: set[str] = set()
    pending = sorted(workload.planned, key=lambda p: p.arrival_step)
    step = 0
    while pending or engine.has_work:
        assert step < MAX_STEPS, "no progress"
        while pending and pending[0].arrival_step <= step:
            engine.add_request(pending.pop(0).request)
        for p in workload.planned:
            rid = p.request.request_id
            if p.abort_step == step and engine.abort(rid):
                aborted.add(rid)
        hits_before = engine.stats.prefix_cache_hits_tokens
        result = engine.step(step * 0.001)
        step += 1

        # token budget
        assert result.num_scheduled_tokens <= config.max_num_batched_tokens
        assert result.num_scheduled_tokens == sum(n for _, n, _ in result.advanced)
        assert len({rid for rid, _, _ in result.advanced}) == len(result.advanced)
        assert engine.stats.num_running <= config.max_num_seqs
        for rid, _, num_out in result.advanced:
            outputs[rid] += num_out
        for rid in result.finished_ids:
            finished[rid] += 1
            assert outputs[rid] == requests[rid].max_tokens
        # preempted requests are recomputed from scratch
        for rid in result.preempted_ids:
            progress = engine.request_progress(rid)
            assert progress is not None
            assert progress.status == "waiting" and progress.num_computed_tokens == 0
        if result.preempted_ids:
            assert result.admitted_ids == ()
        # prefix hits never exceed what the request shares with another one
        bound = 0
        for rid in result.admitted_ids:
            if rid in admitted_before:
                continue
            admitted_before.add(rid)
            prompt = requests[rid].prompt_token_ids
            assert isinstance(prompt, tuple)
            shared = max(
                (
                    common_prefix(prompt, other.prompt_token_ids)  # type: ignore[arg-type]
                    for oid, other in requests.items()
                    if oid != rid
                ),
                default=0,
            )
            bound += shared // config.block_size * config.block_size
        assert engine.stats.prefix_cache_hits_tokens - hits_before <= bound
        check_block_accounting(engine)

    # every admitted request finished exactly once with exactly max_tokens outputs
    for rid, request in requests.items():
        if rid in aborted:
            assert finished[rid] == 0
        else:
            assert finished[rid] == 1
            assert outputs[rid] == request.max_tokens
    stats = engine.stats
    assert stats.num_requests_finished == len(requests) - len(aborted)
    assert stats.num_free_blocks == config.num_gpu_blocks - 1
    assert stats.num_generation_tokens_total == sum(outputs.values())
