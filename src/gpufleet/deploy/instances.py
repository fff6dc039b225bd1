"""AWS GPU instance types per GPU type (package data ``deploy/instances.yaml``).

Contract: ``InstanceCatalog.load()`` parses the file (or a given path) into an
immutable catalog, nothing cached at module level. ``for_pod(gpu, n)`` picks the
instance type an engine pod needing ``n`` GPUs lands on: the smallest (fewest GPUs,
then vCPUs, then memory) with at least ``n`` GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import yaml


@dataclass(frozen=True)
class InstanceType:
    type: str
    gpus: int
    vcpus: int
    memory_gib: float
    price_usd_per_hour: float | None = None


@dataclass(frozen=True)
class InstanceCatalog:
    """Instance types by GPU catalog id, each list sorted smallest first."""

    by_gpu: Mapping[str, tuple[InstanceType, ...]]

    @classmethod
    def load(cls, path: Path | None = None) -> InstanceCatalog:
        """Parse the catalog; ValueError names a malformed entry."""
        if path is None:
            text = (resources.files("gpufleet.deploy") / "instances.yaml").read_text("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text)
        section = doc.get("instances") if isinstance(doc, dict) else None
        if not isinstance(section, dict):
            raise ValueError("instances.yaml: expected an 'instances' mapping")
        by_gpu: dict[str, tuple[InstanceType, ...]] = {}
        for gpu, entries in section.items():
            if not isinstance(entries, list) or not entries:
                raise ValueError(f"instances.yaml: {gpu}: expected a list of instance types")
            parsed = [_instance(str(gpu), entry) for entry in entries]
            by_gpu[str(gpu)] = tuple(sorted(parsed, key=_size))
        return cls(MappingProxyType(by_gpu))

    def for_pod(self, gpu: str, num_gpus: int) -> InstanceType | None:
        """The smallest instance type of ``gpu`` with ≥ ``num_gpus`` GPUs, or None."""
        for instance in self.by_gpu.get(gpu, ()):
            if instance.gpus >= num_gpus:
                return instance
        return None

    def same_gpu_count(self, gpu: str, instance: InstanceType) -> tuple[InstanceType, ...]:
        """Every type of ``gpu`` with exactly ``instance.gpus`` GPUs, smallest first."""
        return tuple(i for i in self.by_gpu.get(gpu, ()) if i.gpus == instance.gpus)

    def max_gpus_per_node(self, gpu: str) -> int | None:
        """GPUs of the largest instance type of ``gpu``; None when it has none."""
        instances = self.by_gpu.get(gpu, ())
        return max((i.gpus for i in instances), default=None)


def _size(instance: InstanceType) -> tuple[int, int, float]:
    return (instance.gpus, instance.vcpus, instance.memory_gib)


def _instance(gpu: str, entry: object) -> InstanceType:
    if not isinstance(entry, dict):
        raise ValueError(f"instances.yaml: {gpu}: each entry must be a mapping")
    try:
        price = entry.get("price_usd_per_hour")
        return InstanceType(
            type=str(entry["type"]),
            gpus=int(entry["gpus"]),
            vcpus=int(entry["vcpus"]),
            memory_gib=float(entry["memory_gib"]),
            price_usd_per_hour=None if price is None else float(price),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"instances.yaml: {gpu}: bad entry {entry!r}: {exc}") from None
