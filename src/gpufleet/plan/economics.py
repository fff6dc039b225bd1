"""What one replica of a (model, GPU, TP) deployment costs per token and how fast it
prefills: the figures the gateway's ``cost-scorer`` and ``slo-headroom-scorer`` read.

Modelled, not measured: decode throughput is the roofline at a representative batch
(as many sequences of ``typical_context`` tokens as the KV pool holds, capped at
``max_num_seqs``), prefill throughput a full token-budget chunk. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpufleet.engine.latency import RooflineLatency, StepShape
from gpufleet.plan.catalog import Catalog
from gpufleet.plan.memory import MemoryAssumptions, estimate_kv_pool


@dataclass(frozen=True)
class ReplicaEconomics:
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    cost_usd_per_mtok: float


def replica_economics(
    catalog: Catalog,
    model: str,
    gpu: str,
    tp: int,
    price_usd_per_hour: float,
    max_model_len: int,
    typical_context: int = 1024,
) -> ReplicaEconomics | None:
    """None when the model or GPU is not in the catalog or the deployment does not fit."""
    try:
        spec, gpu_spec = catalog.model(model), catalog.gpu(gpu)
        pool = estimate_kv_pool(spec, gpu_spec, tp, MemoryAssumptions(max_model_len=max_model_len))
    except (KeyError, ValueError):
        return None
    if not pool.fits:
        return None
    latency = RooflineLatency(spec, gpu_spec, tp)
    chunk = pool.max_num_batched_tokens
    prefill_s = latency.step_time_s(
        StepShape(num_prefill_tokens=chunk, num_attention_pairs=chunk * (chunk + 1) // 2)
    )
    usable_tokens = (pool.num_gpu_blocks - 1) * pool.block_size
    batch = max(1, min(pool.max_num_seqs, usable_tokens // typical_context))
    decode_s = latency.step_time_s(
        StepShape(
            num_decode_tokens=batch,
            num_decode_seqs=batch,
            num_attention_pairs=batch * (typical_context + 1),
            num_kv_read_tokens=batch * typical_context,
        )
    )
    decode_tokens_per_s = batch / decode_s
    cost = price_usd_per_hour / (decode_tokens_per_s * 3600) * 1e6 if price_usd_per_hour else 0.0
    return ReplicaEconomics(chunk / prefill_s, decode_tokens_per_s, cost)
