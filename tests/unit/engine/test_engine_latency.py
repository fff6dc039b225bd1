"""The roofline latency model: decode floor, batch-1 ITL, sub-linear batching, binding limits."""

from __future__ import annotations

import itertools
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufleet.engine.config import EngineConfig
from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.latency import LatencyCoefficients, RooflineLatency, StepShape
from gpufleet.engine.request import EngineRequest
from gpufleet.plan.catalog import Catalog

CATALOG = Catalog.load()


def decode_shape(batch: int, context: int) -> StepShape:
    return StepShape(
        num_decode_tokens=batch,
        num_decode_seqs=batch,
        num_attention_pairs=batch * context,
        num_kv_read_tokens=batch * context,
    )


def step_shapes() -> st.SearchStrategy[StepShape]:
    return st.builds(
        StepShape,
        num_prefill_tokens=st.integers(0, 16_384),
        num_decode_tokens=st.integers(0, 1024),
        num_decode_seqs=st.integers(0, 1024),
        num_attention_pairs=st.integers(0, 10**9),
        num_kv_read_tokens=st.integers(0, 10**7),
    ).filter(lambda s: s.num_tokens > 0)


@settings(max_examples=400, deadline=None)
@given(
    model_key=st.sampled_from(sorted(CATALOG.models)),
    gpu_key=st.sampled_from(sorted(CATALOG.gpus)),
    tp=st.sampled_from([1, 2, 4, 8]),
    shape=step_shapes(),
    eta=st.floats(0.05, 1.0),
    mfu=st.floats(0.05, 1.0),
)
def test_no_step_beats_weight_bytes_over_peak_bandwidth(
    model_key: str, gpu_key: str, tp: int, shape: StepShape, eta: float, mfu: float
) -> None:
    model, gpu = CATALOG.model(model_key), CATALOG.gpu(gpu_key)
    if model.num_attention_heads % tp or (
        model.num_key_value_heads % tp and tp % model.num_key_value_heads
    ):
        return
    coefficients = LatencyCoefficients(bandwidth_efficiency=eta, mfu=mfu)
    latency = RooflineLatency(model, gpu, tp, coefficients)
    weight_bytes = model.weight_bytes_per_gpu(tp)
    if model.is_moe:  # a step streams at least the dense part and k experts
        weight_bytes -= (model.num_local_experts - model.num_experts_per_tok) * (
            model.expert_params_per_gpu(tp) * model.bytes_per_param
        )
    floor_s = weight_bytes / gpu.mem_bandwidth_bytes_per_s
    assert latency.step_time_s(shape) >= floor_s * (1 - 1e-12)


def test_empty_step_costs_nothing() -> None:
    latency = RooflineLatency(CATALOG.model("llama-3-8b"), CATALOG.gpu("h100"))
    assert latency.step_time_s(StepShape()) == 0.0


def test_llama_8b_h100_batch_1_itl_between_floor_and_twice_floor() -> None:
    model, gpu = CATALOG.model("llama-3-8b"), CATALOG.gpu("h100")
    floor_s = model.weight_bytes() / gpu.mem_bandwidth_bytes_per_s
    assert floor_s == pytest.approx(4.8e-3, abs=0.02e-3)
    latency = RooflineLatency(model, gpu)
    for context in (1, 512, 4096, 8192):
        assert floor_s < latency.step_time_s(decode_shape(1, context)) < 2 * floor_s

    # the same through the engine: one request, measured inter-token latency
    engine = EngineModel(
        EngineConfig(num_gpu_blocks=1024, max_model_len=8192, max_num_batched_tokens=8192),
        latency,
    )
    engine.add_request(EngineRequest("one", tuple(range(1000)), max_tokens=64))
    durations = []
    while engine.has_work:
        result = engine.step(0.0)
        if result.num_prefill_tokens == 0:
            durations.append(result.duration_s)
    assert len(durations) == 63
    assert all(floor_s < d < 2 * floor_s for d in durations)


def test_decode_throughput_grows_sub_linearly_with_batch() -> None:
    latency = RooflineLatency(CATALOG.model("llama-3-8b"), CATALOG.gpu("h100"))
    batches = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    times = [latency.step_time_s(decode_shape(b, 1024)) for b in batches]
    throughput = [b / t for b, t in zip(batches, times, strict=True)]
    for i in range(1, len(batches)):
        assert times[i] > times[i - 1]
        assert throughput[i] > throughput[i - 1]
        assert throughput[i] < 2 * throughput[i - 1]  # doubling the batch never doubles it


def test_mixed_step_costs_no_more_than_separate_steps() -> None:
    latency = RooflineLatency(CATALOG.model("llama-3-8b"), CATALOG.gpu("h100"))
    prefill = StepShape(
        num_prefill_tokens=512, num_attention_pairs=512 * 513 // 2, num_kv_read_tokens=512
    )
    decode = decode_shape(64, 1024)
    mixed = StepShape(
        num_prefill_tokens=512,
        num_decode_tokens=64,
        num_decode_seqs=64,
        num_attention_pairs=prefill.num_attention_pairs + decode.num_attention_pairs,
        num_kv_read_tokens=prefill.num_kv_read_tokens + decode.num_kv_read_tokens,
    )
    t_mixed = latency.step_time_s(mixed)
    assert max(latency.step_time_s(prefill), latency.step_time_s(decode)) <= t_mixed
    assert t_mixed < latency.step_time_s(prefill) + latency.step_time_s(decode)


def test_tensor_parallel_speeds_up_decode_but_pays_all_reduce() -> None:
    model, gpu = CATALOG.model("llama-3-70b"), CATALOG.gpu("h100")
    tp2, tp4 = RooflineLatency(model, gpu, 2), RooflineLatency(model, gpu, 4)
    shape = decode_shape(1, 1024)
    assert tp4.step_time_s(shape) < tp2.step_time_s(shape)
    assert tp4.step_time_s(shape) > tp2.step_time_s(shape) / 2  # all-reduce latency is not free
    pcie = RooflineLatency(model, CATALOG.gpu("h100-pcie"), 4)
    assert pcie.step_time_s(shape) > tp4.step_time_s(shape)


def test_prefill_is_compute_bound() -> None:
    model, gpu = CATALOG.model("llama-3-8b"), CATALOG.gpu("h100")
    latency = RooflineLatency(model, gpu)
    tokens = 8192
    shape = StepShape(
        num_prefill_tokens=tokens,
        num_attention_pairs=tokens * (tokens + 1) // 2,
        num_kv_read_tokens=tokens,
    )
    compute_s = 2 * model.num_params * tokens / (0.5 * gpu.bf16_tflops * 1e12)
    assert compute_s < latency.step_time_s(shape) < 1.3 * compute_s


def decode_tokens_per_s(config: EngineConfig, num_requests: int, prompt: int, output: int) -> float:
    """Median over pure-decode steps of generated tokens per simulated second."""
    latency = RooflineLatency(CATALOG.model("llama-3-8b"), CATALOG.gpu("h100"))
    engine = EngineModel(config, latency)
    for i in range(num_requests):
        engine.add_request(EngineRequest(f"r{i}", (i, *range(prompt - 1)), max_tokens=output))
    rates = []
    while engine.has_work:
        result = engine.step(0.0)
        if result.num_prefill_tokens == 0:
            rates.append(result.num_generated_tokens / result.duration_s)
    return statistics.median(rates)


def assert_grows_sub_linearly(tput: dict[int, float], sizes: tuple[int, ...]) -> None:
    for small, large in itertools.pairwise(sizes):
        assert tput[small] < tput[large] < tput[small] * large / small


def test_throughput_grows_until_the_token_budget_binds() -> None:
    config = EngineConfig(num_gpu_blocks=4096, max_model_len=512, max_num_batched_tokens=32)
    tput = {n: decode_tokens_per_s(config, n, 8, 128) for n in (4, 8, 16, 32, 64, 128)}
    assert_grows_sub_linearly(tput, (4, 8, 16, 32))
    # beyond 32 running requests each step still decodes only 32 tokens
    assert tput[64] == pytest.approx(tput[32], rel=0.02)
    assert tput[128] == pytest.approx(tput[32], rel=0.02)


def test_throughput_grows_until_the_kv_pool_binds() -> None:
    # 112 + 16 tokens = 8 blocks per request; 128 usable blocks hold 16 requests
    config = EngineConfig(num_gpu_blocks=129, max_model_len=128, max_num_batched_tokens=8192)
    tput = {n: decode_tokens_per_s(config, n, 112, 16) for n in (4, 8, 16, 32, 64)}
    assert_grows_sub_linearly(tput, (4, 8, 16))
    assert tput[32] == pytest.approx(tput[16], rel=0.02)
    assert tput[64] == pytest.approx(tput[16], rel=0.02)
