"""How big a KV-cache pool vLLM carves out for (model, GPU, TP), and whether it runs at all.

Algorithm (vLLM V1 memory profiling, per GPU, all terms in GiB):

    requested   = total_mem × gpu_memory_utilization
    kv_pool     = requested − weights − activation_peak − non_torch − cuda_graph
    num_blocks  = floor(kv_pool / (block_size × kv_bytes_per_token_per_gpu))

- ``weights``: the model's weight bytes per GPU under TP (`ModelSpec.weight_bytes_per_gpu`).
- ``activation_peak``: heuristic for vLLM's profile run at the token budget —
  the live tensors of one layer for ``max_num_batched_tokens`` tokens (residual
  stream and norm output, 2 × hidden; q/k/v heads on this GPU; the gated MLP's
  gate/up output and activation, 3 × experts_per_tok × intermediate / TP) in the
  model dtype, plus the sampler's FP32 logits for ``max_num_seqs`` sequences.
  Calibrate it with vLLM's log line "PyTorch activation peak memory takes X GiB".
- ``non_torch``: CUDA context, NCCL and custom all-reduce buffers: 0.4 GiB, plus
  0.6 GiB when TP > 1 (defaults, unverified; vLLM logs the measured value).
- ``cuda_graph``: vLLM ≥ 0.21 subtracts an estimate of CUDA-graph memory;
  default 0.5 GiB (unverified), 0 when graphs are disabled (``enforce_eager``).

Every term can be overridden with a measured value via `MemoryAssumptions`.

Fit rule (vLLM's start-up check ``check_enough_kv_cache_memory``, plus the
null block vLLM reserves out of the pool): (model, GPU, TP) fits iff the
usable blocks hold one sequence of ``max_model_len`` tokens, i.e.
``num_blocks − 1 ≥ ceil(max_model_len / block_size)``. A pool ≤ 0 never fits.
This is the same condition `gpufleet.engine.config.EngineConfig` enforces
(without speculative look-ahead), so a fitting estimate always makes a valid
engine. ``max_model_len`` defaults to the model's
``max_position_embeddings``; planners lower it to fit long-context models.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpufleet.plan.gpu_spec import GIB, GpuSpec
from gpufleet.plan.model_spec import ModelSpec

_SAMPLER_LOGIT_BYTES = 4


@dataclass(frozen=True)
class MemoryAssumptions:
    """Inputs of the KV-pool estimate. Each ``None`` means "derive it" (see module doc)."""

    gpu_memory_utilization: float = 0.9
    block_size: int = 16
    max_model_len: int | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    weight_bytes_per_param: float | None = None
    kv_bytes_per_value: int | None = None
    kv_bytes_per_token: int | None = None
    total_mem_gib: float | None = None
    weights_gib: float | None = None
    activation_peak_gib: float | None = None
    non_torch_gib: float | None = None
    cuda_graph_gib: float | None = None
    non_torch_base_gib: float = 0.4
    non_torch_tp_extra_gib: float = 0.6
    cuda_graph_default_gib: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ValueError("gpu_memory_utilization must be in (0, 1]")
        if self.block_size <= 0:
            raise ValueError("block_size must be positive")


@dataclass(frozen=True)
class KvPoolEstimate:
    """Every term of the estimate, per GPU, so a report can show the arithmetic."""

    model_key: str
    gpu_key: str
    tp: int
    total_mem_gib: float
    gpu_memory_utilization: float
    requested_gib: float
    weights_gib: float
    activation_peak_gib: float
    non_torch_gib: float
    cuda_graph_gib: float
    kv_pool_gib: float
    kv_bytes_per_token: int
    block_size: int
    num_gpu_blocks: int
    max_model_len: int
    max_num_batched_tokens: int
    max_num_seqs: int
    fits: bool
    reason: str

    @property
    def num_kv_tokens(self) -> int:
        """Tokens the pool holds (vLLM's "GPU KV cache size: N tokens")."""
        return self.num_gpu_blocks * self.block_size

    @property
    def max_concurrency(self) -> float:
        """Sequences of ``max_model_len`` tokens the pool holds at once."""
        return self.num_kv_tokens / self.max_model_len


def activation_peak_bytes(
    model: ModelSpec, tp: int, max_num_batched_tokens: int, max_num_seqs: int
) -> int:
    """Heuristic peak activation bytes of vLLM's profile run (see module doc)."""
    heads = model.num_attention_heads // tp + 2 * model.num_kv_heads_per_gpu(tp)
    mlp = 3 * model.num_experts_per_tok * -(-model.intermediate_size // tp)
    values_per_token = 2 * model.hidden_size + heads * model.head_dim + mlp
    layer_bytes = max_num_batched_tokens * values_per_token * model.bytes_per_param
    logits_bytes = max_num_seqs * model.vocab_size * _SAMPLER_LOGIT_BYTES
    return layer_bytes + logits_bytes


def estimate_kv_pool(
    model: ModelSpec, gpu: GpuSpec, tp: int = 1, assume: MemoryAssumptions | None = None
) -> KvPoolEstimate:
    """Size the KV pool of one replica (see the module doc for the algorithm and fit rule)."""
    a = MemoryAssumptions() if assume is None else assume
    model.check_tensor_parallel(tp)
    budget_tokens = a.max_num_batched_tokens or gpu.max_num_batched_tokens
    max_seqs = a.max_num_seqs or gpu.max_num_seqs
    max_model_len = a.max_model_len or model.max_position_embeddings
    total = gpu.mem_total_gib if a.total_mem_gib is None else a.total_mem_gib
    requested = total * a.gpu_memory_utilization
    weights = _or(a.weights_gib, model.weight_bytes_per_gpu(tp, a.weight_bytes_per_param) / GIB)
    activation = _or(
        a.activation_peak_gib, activation_peak_bytes(model, tp, budget_tokens, max_seqs) / GIB
    )
    non_torch = _or(
        a.non_torch_gib, a.non_torch_base_gib + (a.non_torch_tp_extra_gib if tp > 1 else 0)
    )
    cuda_graph = _or(a.cuda_graph_gib, a.cuda_graph_default_gib)
    kv_pool = requested - weights - activation - non_torch - cuda_graph
    kv_per_token = a.kv_bytes_per_token or model.kv_bytes_per_token_per_gpu(
        tp, a.kv_bytes_per_value
    )
    block_bytes = a.block_size * kv_per_token
    num_blocks = max(0, int(kv_pool * GIB) // block_bytes)
    needed_blocks = -(-max_model_len // a.block_size)
    if kv_pool <= 0:
        fits, reason = False, f"no memory left for KV cache ({kv_pool:.2f} GiB)"
    elif num_blocks - 1 < needed_blocks:
        fits = False
        reason = (
            f"KV pool holds {(num_blocks - 1) * a.block_size} usable tokens, fewer than "
            f"max_model_len {max_model_len}"
        )
    else:
        fits, reason = (
            True,
            f"KV pool holds {num_blocks * a.block_size / max_model_len:.1f}x max_model_len",
        )
    return KvPoolEstimate(
        model_key=model.key,
        gpu_key=gpu.key,
        tp=tp,
        total_mem_gib=total,
        gpu_memory_utilization=a.gpu_memory_utilization,
        requested_gib=requested,
        weights_gib=weights,
        activation_peak_gib=activation,
        non_torch_gib=non_torch,
        cuda_graph_gib=cuda_graph,
        kv_pool_gib=kv_pool,
        kv_bytes_per_token=kv_per_token,
        block_size=a.block_size,
        num_gpu_blocks=num_blocks,
        max_model_len=max_model_len,
        max_num_batched_tokens=budget_tokens,
        max_num_seqs=max_seqs,
        fits=fits,
        reason=reason,
    )


def _or(override: float | None, derived: float) -> float:
    return derived if override is None else override
