"""Requests per second one replica sustains at an SLO: a fast analytical estimate.

Algorithm, for (model, GPU, TP) and requests of mean prompt P and output O
tokens, steady state with continuous batching at decode batch B:

- a decode step at batch B (context ≈ P + O/2) takes ``t_d(B)`` by the engine's
  own `RooflineLatency`; a prompt token costs ``c_p`` = prefill step of P
  tokens / P (fixed step overheads included, so it is conservative);
- each second the GPU spends ``λ·P·c_p`` prefilling and ``λ·O·t_d(B)/B``
  decoding, so ``λ(B) = 1 / (P·c_p + O·t_d(B)/B)``; decode steps run at
  ``λ·O/B`` per second, so the inter-token latency is
  ``ITL(B) = t_d(B) + B·P·c_p / O`` (decodes wait for interleaved prefills);
- B is the largest batch with ``ITL(B) ≤ itl_s``, at most ``max_num_seqs`` and
  what the KV pool holds at ``P + O`` tokens each; the prefill of one prompt
  must take ≤ half the TTFT target (the other half is queueing headroom);
- capacity = ``headroom × λ(B)`` (default 0.8: queues stay short).

None when the deployment does not fit (``estimate_kv_pool``) or cannot meet
the SLO at batch 1. Simulation then confirms or lowers the figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpufleet.engine.latency import RooflineLatency, StepShape
from gpufleet.plan.gpu_spec import GpuSpec
from gpufleet.plan.memory import MemoryAssumptions, estimate_kv_pool
from gpufleet.plan.model_spec import ModelSpec


@dataclass(frozen=True)
class Slo:
    """Latency targets at a percentile (the simulation checks them at ``percentile``)."""

    ttft_s: float = 2.0
    itl_s: float = 0.1
    percentile: float = 90.0

    def __post_init__(self) -> None:
        if self.ttft_s <= 0 or self.itl_s <= 0 or not 0 < self.percentile < 100:
            raise ValueError("SLO targets must be positive and the percentile in (0, 100)")


@dataclass(frozen=True)
class Capacity:
    """What one replica sustains at the SLO, and at which batch."""

    requests_per_s: float
    batch: int
    itl_s: float
    prefill_s: float


def replica_capacity(
    model: ModelSpec,
    gpu: GpuSpec,
    tp: int,
    prompt_tokens: float,
    output_tokens: float,
    slo: Slo,
    max_model_len: int,
    headroom: float = 0.8,
) -> Capacity | None:
    """The analytical capacity of the module doc (None: unusable)."""
    try:
        pool = estimate_kv_pool(model, gpu, tp, MemoryAssumptions(max_model_len=max_model_len))
    except ValueError:
        return None
    if not pool.fits:
        return None
    latency = RooflineLatency(model, gpu, tp)
    p, o = max(prompt_tokens, 1.0), max(output_tokens, 1.0)
    p_int = int(p)
    prefill_s = latency.step_time_s(
        StepShape(num_prefill_tokens=p_int, num_attention_pairs=p_int * (p_int + 1) // 2)
    )
    if prefill_s > slo.ttft_s / 2:
        return None
    c_p = prefill_s / p
    ctx = int(p + o / 2)
    usable_tokens = (pool.num_gpu_blocks - 1) * pool.block_size
    max_batch = max(1, min(pool.max_num_seqs, int(usable_tokens // (p + o))))

    def itl(b: int) -> float:
        t_d = latency.step_time_s(
            StepShape(
                num_decode_tokens=b,
                num_decode_seqs=b,
                num_attention_pairs=b * (ctx + 1),
                num_kv_read_tokens=b * ctx,
            )
        )
        return t_d + b * p * c_p / o

    if itl(1) > slo.itl_s:
        return None
    lo, hi = 1, max_batch
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if itl(mid) <= slo.itl_s:
            lo = mid
        else:
            hi = mid - 1
    t_d = itl(lo) - lo * p * c_p / o
    rate = 1.0 / (p * c_p + o * t_d / lo)
    return Capacity(headroom * rate, lo, itl(lo), prefill_s)
