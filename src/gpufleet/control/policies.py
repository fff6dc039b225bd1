"""Which policy the live controller runs."""

from __future__ import annotations

from gpufleet.autoscale import SloAutoscaler
from gpufleet.autoscale.signals import AutoscalePolicy
from gpufleet.config import FleetConfig
from gpufleet.plan.catalog import Catalog
from gpufleet.sim.autoscale import StaticPolicy


def make_policy(config: FleetConfig, enabled: bool) -> AutoscalePolicy:
    """The fleet's SLO autoscaler (``autoscale:`` section) when ``enabled``; otherwise the
    static policy, which is never evaluated (the controller then only handles notices)."""
    if not enabled:
        return StaticPolicy()
    return SloAutoscaler(config.autoscale, config, Catalog.load())
