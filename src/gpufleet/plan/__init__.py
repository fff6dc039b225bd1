"""Planning inputs: the model and GPU catalog, model-derived sizes, KV-pool memory."""

from gpufleet.plan.catalog import Catalog
from gpufleet.plan.gpu_spec import GpuSpec
from gpufleet.plan.memory import KvPoolEstimate, MemoryAssumptions, estimate_kv_pool
from gpufleet.plan.model_spec import ModelSpec

__all__ = [
    "Catalog",
    "GpuSpec",
    "KvPoolEstimate",
    "MemoryAssumptions",
    "ModelSpec",
    "estimate_kv_pool",
]
