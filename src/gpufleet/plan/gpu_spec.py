"""One GPU type: memory, bandwidth, peak FLOPS, interconnect and vLLM scheduler defaults.

Contract: figures are dense peaks in decimal units as datasheets quote them
(GB, GB/s, TFLOPS), except ``mem_total_gib``, the memory CUDA reports as total
(binary GiB), which is what vLLM multiplies by ``gpu_memory_utilization``.
Derived byte/second figures are exact conversions of those fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

GIB = 1 << 30
"""Bytes per GiB."""

InterconnectKind = Literal["nvlink", "pcie"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class GpuSpec:
    """A GPU type from the catalog (``src/gpufleet/data/gpus.yaml``).

    ``fp8_tflops`` is None for GPUs without FP8 tensor cores. ``unverified``
    names the fields that are defaults rather than datasheet or measured values.
    """

    key: str
    name: str
    mem_gb: float
    mem_total_gib: float
    mem_bandwidth_gb_per_s: float
    bf16_tflops: float
    fp8_tflops: float | None
    interconnect: InterconnectKind
    interconnect_gb_per_s: float
    max_num_batched_tokens: int
    max_num_seqs: int
    unverified: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        positive = {
            "mem_gb": self.mem_gb,
            "mem_total_gib": self.mem_total_gib,
            "mem_bandwidth_gb_per_s": self.mem_bandwidth_gb_per_s,
            "bf16_tflops": self.bf16_tflops,
            "interconnect_gb_per_s": self.interconnect_gb_per_s,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "max_num_seqs": self.max_num_seqs,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{self.key}: {name} must be positive, got {value}")
        if self.fp8_tflops is not None and self.fp8_tflops <= 0:
            raise ValueError(f"{self.key}: fp8_tflops must be positive or null")
        if self.interconnect not in ("nvlink", "pcie"):
            raise ValueError(f"{self.key}: interconnect must be nvlink or pcie")

    @classmethod
    def from_mapping(cls, key: str, entry: Mapping[str, object]) -> GpuSpec:
        """Build from one ``gpus.yaml`` entry; ValueError names a missing or bad field."""
        fp8 = entry.get("fp8_tflops")
        interconnect = _field(entry, key, "interconnect", str)
        if interconnect not in ("nvlink", "pcie"):
            raise ValueError(f"{key}: interconnect must be nvlink or pcie, got {interconnect!r}")
        unverified = entry.get("unverified", ())
        return cls(
            key=key,
            name=_field(entry, key, "name", str),
            mem_gb=_number(entry, key, "mem_gb"),
            mem_total_gib=_number(entry, key, "mem_total_gib"),
            mem_bandwidth_gb_per_s=_number(entry, key, "mem_bandwidth_gb_per_s"),
            bf16_tflops=_number(entry, key, "bf16_tflops"),
            fp8_tflops=None if fp8 is None else _number(entry, key, "fp8_tflops"),
            interconnect="nvlink" if interconnect == "nvlink" else "pcie",
            interconnect_gb_per_s=_number(entry, key, "interconnect_gb_per_s"),
            max_num_batched_tokens=_field(entry, key, "max_num_batched_tokens", int),
            max_num_seqs=_field(entry, key, "max_num_seqs", int),
            unverified=tuple(str(u) for u in unverified) if isinstance(unverified, list) else (),
        )

    @property
    def mem_total_bytes(self) -> int:
        """Memory CUDA reports as total, in bytes."""
        return int(self.mem_total_gib * GIB)

    @property
    def mem_bandwidth_bytes_per_s(self) -> float:
        """Peak memory bandwidth in bytes per second."""
        return self.mem_bandwidth_gb_per_s * 1e9

    @property
    def interconnect_bytes_per_s(self) -> float:
        """GPU-to-GPU link bandwidth in bytes per second."""
        return self.interconnect_gb_per_s * 1e9

    def peak_flops(self, bytes_per_param: float = 2) -> float:
        """Dense peak FLOP/s for the weight precision: FP8 rate for 1-byte weights
        where the GPU has FP8, the BF16 rate otherwise."""
        if bytes_per_param <= 1 and self.fp8_tflops is not None:
            return self.fp8_tflops * 1e12
        return self.bf16_tflops * 1e12


def _field(entry: Mapping[str, object], key: str, name: str, kind: type[_T]) -> _T:
    value = entry.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"gpu {key}: field {name!r} must be {kind.__name__}, got {value!r}")
    return value


def _number(entry: Mapping[str, object], key: str, name: str) -> float:
    value = entry.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"gpu {key}: field {name!r} must be a number, got {value!r}")
    return float(value)
