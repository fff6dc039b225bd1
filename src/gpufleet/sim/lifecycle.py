"""Replica lifecycle models: cold starts and spot interruptions. Pure values.

Cold start (seconds from provisioning to routable)::

    provision_s + weight_bytes_total / download_bytes_per_s
                + weight_bytes_per_gpu / load_bytes_per_s + engine_init_s

Weights are downloaded once per replica (all TP shards) and loaded by each GPU
in parallel. Defaults are unverified round figures: 60 s to get a node, 1 GB/s
from object storage, 5 GB/s host-to-GPU, 30 s engine init (CUDA graphs,
profiling). Calibrate from your own replica start logs.

Spot interruptions are a Poisson process per spot replica with
``interruptions_per_hour``; an interruption gives ``notice_s`` of warning (AWS
120 s, GCP/Azure 30 s), during which the replica drains (no new requests) and,
with ``replace``, a replacement is provisioned at once; at the end of the
notice the replica stops and whatever it still runs is lost.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ColdStart:
    """How long a new replica takes to become routable (module doc)."""

    provision_s: float = 60.0
    download_gb_per_s: float = 1.0
    load_gb_per_s: float = 5.0
    engine_init_s: float = 30.0

    def __post_init__(self) -> None:
        if self.download_gb_per_s <= 0 or self.load_gb_per_s <= 0:
            raise ValueError("bandwidths must be positive")
        if self.provision_s < 0 or self.engine_init_s < 0:
            raise ValueError("provision_s and engine_init_s must be non-negative")

    def seconds(self, weight_bytes_per_gpu: int, gpus: int) -> float:
        """Cold-start time of one replica of ``gpus`` GPUs."""
        download = weight_bytes_per_gpu * gpus / (self.download_gb_per_s * 1e9)
        load = weight_bytes_per_gpu / (self.load_gb_per_s * 1e9)
        return self.provision_s + download + load + self.engine_init_s


@dataclass(frozen=True)
class SpotPolicy:
    """Interruptions of one spot pool (module doc)."""

    interruptions_per_hour: float = 0.02
    notice_s: float = 120.0
    replace: bool = True

    def __post_init__(self) -> None:
        if self.interruptions_per_hour < 0 or self.notice_s < 0:
            raise ValueError("interruption rate and notice must be non-negative")
