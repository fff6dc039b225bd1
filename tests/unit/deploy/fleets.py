"""The fleets every renderer test runs on: the example fleet and the golden test fleets."""

from __future__ import annotations

from pathlib import Path

from gpufleet.config import FleetConfig, load_config
from gpufleet.deploy.spec import FleetSpec, fleet_spec

ROOT = Path(__file__).parents[3]
GOLDEN = ROOT / "tests" / "golden"
FLEETS = {
    "example": ROOT / "examples" / "fleet.yaml",
    "multinode": GOLDEN / "fleets" / "multinode.yaml",
    "minimal": GOLDEN / "fleets" / "minimal.yaml",
}
REPO_CHART = ROOT / "deploy" / "helm" / "gpufleet"
"""The chart in the repository: the helm target of the example fleet."""


def config(name: str) -> FleetConfig:
    return load_config(FLEETS[name], env={})


def spec(name: str) -> FleetSpec:
    return fleet_spec(config(name))
