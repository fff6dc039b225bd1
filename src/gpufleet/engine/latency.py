"""How long one engine step takes: a `LatencyModel` seam and a roofline implementation.

A step is one forward pass over every token the scheduler picked (chunked
prefill and decodes together), described by aggregate sums in `StepShape`, so
evaluating it is O(1) whatever the batch size.

Roofline algorithm (per GPU of the tensor-parallel group):

    linear    = max(2 · active_params · tokens / (mfu · peak_flops),
                    weight_bytes_read / (η · bandwidth))
    attention = max(4 · layers · heads · head_dim · attention_pairs / (mfu · peak_flops),
                    kv_read_tokens · kv_bytes_per_token / (η · bandwidth))
    all_reduce = 2 · layers · (latency + tokens · hidden · bytes · 2(TP−1)/TP / link_bw)  if TP > 1
    step      = linear + attention + all_reduce + layers · per_layer_overhead + step_overhead

Linear layers and attention are different kernels, so each is bounded by its
own roofline and their times add; within the linear layers prefill and decode
tokens share one weight read, so a mixed step costs the max of compute and
memory over all its tokens, not a sum of a prefill step and a decode step.
For a mixture of experts, ``weight_bytes_read`` counts the dense part plus the
experts a batch of ``tokens`` is expected to touch,
``E · (1 − (1 − k/E)^tokens)`` per layer. Because η ≤ 1, no step is ever
predicted faster than the weight bytes it must read divided by peak bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gpufleet.plan.gpu_spec import GpuSpec
from gpufleet.plan.model_spec import ModelSpec


@dataclass(frozen=True, slots=True)
class StepShape:
    """Aggregate description of one step.

    ``num_attention_pairs`` = Σ over scheduled sequences of query × key pairs:
    a chunk of n new tokens after c computed ones contributes
    ``n·c + n(n+1)/2``; a decode token at context c contributes ``c + 1``.
    ``num_kv_read_tokens`` = Σ of context lengths (KV entries read)."""

    num_prefill_tokens: int = 0
    num_decode_tokens: int = 0
    num_decode_seqs: int = 0
    num_attention_pairs: int = 0
    num_kv_read_tokens: int = 0

    @property
    def num_tokens(self) -> int:
        """All tokens computed in the step."""
        return self.num_prefill_tokens + self.num_decode_tokens


class LatencyModel(Protocol):
    """Predicts step durations; a profiled table can replace the roofline."""

    def step_time_s(self, shape: StepShape) -> float:
        """Seconds one step of this shape takes; 0 for an empty step."""
        ...


@dataclass(frozen=True)
class LatencyCoefficients:
    """Efficiency constants of the roofline; calibrate against measured steps.

    Defaults: η = 0.8 of peak bandwidth (practice: 0.75–0.80); MFU 0.5 of
    dense peak FLOPS for prefill-sized GEMMs; 3 µs launch/sync overhead per
    layer; 0.3 ms per step for scheduling, sampling and input preparation; an
    all-reduce start-up latency of 8 µs on NVLink and 25 µs over PCIe
    (the PCIe figure is unverified)."""

    bandwidth_efficiency: float = 0.8
    mfu: float = 0.5
    per_layer_overhead_s: float = 3e-6
    step_overhead_s: float = 3e-4
    nvlink_allreduce_latency_s: float = 8e-6
    pcie_allreduce_latency_s: float = 25e-6

    def __post_init__(self) -> None:
        if not 0.0 < self.bandwidth_efficiency <= 1.0 or not 0.0 < self.mfu <= 1.0:
            raise ValueError("bandwidth_efficiency and mfu must be in (0, 1]")
        overheads = (
            self.per_layer_overhead_s,
            self.step_overhead_s,
            self.nvlink_allreduce_latency_s,
            self.pcie_allreduce_latency_s,
        )
        if min(overheads) < 0:
            raise ValueError("overheads and latencies must be non-negative")


class RooflineLatency:
    """The roofline of the module docstring for one (model, GPU, TP) deployment.

    Constants are folded in the constructor; `step_time_s` is a dozen float
    operations. ``weight_bytes_per_param`` / ``kv_bytes_per_value`` override the
    model dtype (e.g. 1 for FP8 weights, which also selects the FP8 peak)."""

    __slots__ = (
        "_allreduce_fixed_s",
        "_allreduce_s_per_token",
        "_attention_s_per_pair",
        "_dense_weight_bytes",
        "_expert_bytes",
        "_fixed_s",
        "_kv_s_per_token",
        "_linear_s_per_token",
        "_num_experts",
        "_s_per_byte",
        "_untouched_expert_fraction",
        "weight_bytes_per_gpu",
    )

    def __init__(
        self,
        model: ModelSpec,
        gpu: GpuSpec,
        tp: int = 1,
        coefficients: LatencyCoefficients | None = None,
        weight_bytes_per_param: float | None = None,
        kv_bytes_per_value: int | None = None,
    ) -> None:
        c = LatencyCoefficients() if coefficients is None else coefficients
        bytes_per_param = weight_bytes_per_param or model.bytes_per_param
        layers = model.num_hidden_layers
        flops_per_s = c.mfu * gpu.peak_flops(bytes_per_param)
        self._s_per_byte = 1.0 / (c.bandwidth_efficiency * gpu.mem_bandwidth_bytes_per_s)
        self.weight_bytes_per_gpu = model.weight_bytes_per_gpu(tp, bytes_per_param)
        self._num_experts = model.num_local_experts
        expert_bytes = model.expert_params_per_gpu(tp) * bytes_per_param if model.is_moe else 0.0
        self._expert_bytes = expert_bytes
        self._dense_weight_bytes = self.weight_bytes_per_gpu - self._num_experts * expert_bytes
        self._untouched_expert_fraction = 1.0 - model.num_experts_per_tok / model.num_local_experts
        self._linear_s_per_token = 2.0 * model.num_active_params_per_gpu(tp) / flops_per_s
        heads = model.num_attention_heads // tp
        self._attention_s_per_pair = 4.0 * layers * heads * model.head_dim / flops_per_s
        kv_bytes_per_token = model.kv_bytes_per_token_per_gpu(tp, kv_bytes_per_value)
        self._kv_s_per_token = kv_bytes_per_token * self._s_per_byte
        if tp > 1:
            latency = (
                c.nvlink_allreduce_latency_s
                if gpu.interconnect == "nvlink"
                else c.pcie_allreduce_latency_s
            )
            message_bytes = model.hidden_size * model.bytes_per_param * 2.0 * (tp - 1) / tp
            self._allreduce_fixed_s = 2 * layers * latency
            self._allreduce_s_per_token = 2 * layers * message_bytes / gpu.interconnect_bytes_per_s
        else:
            self._allreduce_fixed_s = 0.0
            self._allreduce_s_per_token = 0.0
        self._fixed_s = layers * c.per_layer_overhead_s + c.step_overhead_s

    def weight_bytes_read(self, num_tokens: int) -> float:
        """Weight bytes one GPU streams for a step of ``num_tokens`` tokens."""
        if not self._expert_bytes:
            return float(self.weight_bytes_per_gpu)
        touched = self._num_experts * (1.0 - self._untouched_expert_fraction**num_tokens)
        return self._dense_weight_bytes + touched * self._expert_bytes

    def decode_terms(self, num_seqs: int) -> tuple[float, float, float, float]:
        """A decode-only step of ``num_seqs`` sequences over ``context`` KV tokens
        (Σ of their contexts + 1) lasts ``linear + context·per_token + comm + fixed``:
        returns those four terms, so that this sum is exactly `step_time_s` of that
        shape, float for float (attention pairs = KV tokens read = context there)."""
        linear = max(
            num_seqs * self._linear_s_per_token,
            self.weight_bytes_read(num_seqs) * self._s_per_byte,
        )
        per_token = max(self._attention_s_per_pair, self._kv_s_per_token)
        comm = self._allreduce_fixed_s + num_seqs * self._allreduce_s_per_token
        return linear, per_token, comm, self._fixed_s

    def step_time_s(self, shape: StepShape) -> float:
        """Roofline step time (module docstring); 0 for an empty step."""
        tokens = shape.num_prefill_tokens + shape.num_decode_tokens
        if tokens <= 0:
            return 0.0
        linear = max(
            tokens * self._linear_s_per_token, self.weight_bytes_read(tokens) * self._s_per_byte
        )
        attention = max(
            shape.num_attention_pairs * self._attention_s_per_pair,
            shape.num_kv_read_tokens * self._kv_s_per_token,
        )
        comm = self._allreduce_fixed_s + tokens * self._allreduce_s_per_token
        return linear + attention + comm + self._fixed_s
