"""GPU prices per cloud, region and capacity type: the planner's price table (a data file).

Contract: `PriceTable.load()` reads ``gpufleet/data/prices.yaml`` (or a given
path) into immutable `GpuPrice` rows, one per (cloud, region, GPU, capacity
type) with a price; `select` filters by clouds, regions and capacity types.
Capacity types: ``on-demand``, ``spot``, ``reserved``. ``availability`` is 1
except for spot, where it is the row's ``spot_availability``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

CAPACITY_TYPES = ("on-demand", "spot", "reserved")
_FIELDS = {"on-demand": "on_demand", "spot": "spot", "reserved": "reserved"}


@dataclass(frozen=True)
class GpuPrice:
    """One purchasable option: a GPU type in a region under a capacity type."""

    cloud: str
    region: str
    gpu: str
    capacity: str
    usd_per_gpu_hour: float
    availability: float
    unverified: bool


@dataclass(frozen=True)
class PriceTable:
    rows: tuple[GpuPrice, ...]

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """Parse the price file; ValueError names a bad entry."""
        if path is None:
            text = (resources.files("gpufleet") / "data" / "prices.yaml").read_text("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text)
        clouds = doc.get("prices") if isinstance(doc, dict) else None
        if not isinstance(clouds, dict):
            raise ValueError("prices file: expected a top-level 'prices' mapping")
        rows: list[GpuPrice] = []
        for cloud, regions in clouds.items():
            for region, gpus in _mapping(regions, str(cloud)).items():
                for gpu, entry in _mapping(gpus, f"{cloud}/{region}").items():
                    rows.extend(_rows(str(cloud), str(region), str(gpu), _mapping(entry, gpu)))
        return cls(tuple(rows))

    def select(
        self,
        clouds: Collection[str] = (),
        regions: Collection[str] = (),
        capacity_types: Collection[str] = CAPACITY_TYPES,
    ) -> list[GpuPrice]:
        """Rows in the given clouds/regions (empty: all) and capacity types."""
        return [
            r
            for r in self.rows
            if (not clouds or r.cloud in clouds)
            and (not regions or r.region in regions)
            and r.capacity in capacity_types
        ]


def _rows(cloud: str, region: str, gpu: str, entry: Mapping[str, object]) -> list[GpuPrice]:
    unverified = entry.get("unverified") or []
    availability = entry.get("spot_availability", 1.0)
    if not isinstance(availability, int | float) or not 0 < availability <= 1:
        raise ValueError(f"prices {cloud}/{region}/{gpu}: spot_availability must be in (0, 1]")
    rows = []
    for capacity, key in _FIELDS.items():
        price = entry.get(key)
        if price is None:
            continue
        if not isinstance(price, int | float) or price < 0:
            raise ValueError(f"prices {cloud}/{region}/{gpu}: {key} must be a number ≥ 0")
        rows.append(
            GpuPrice(
                cloud, region, gpu, capacity, float(price),
                float(availability) if capacity == "spot" else 1.0,
                isinstance(unverified, list) and key in unverified,
            )
        )  # fmt: skip
    return rows


def _mapping(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ValueError(f"prices file: {where} must be a mapping")
    return value
