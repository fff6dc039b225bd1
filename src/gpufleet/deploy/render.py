"""``gpufleet render``: fleet.yaml → the files of one deployment target.

Contract: ``render(config, target)`` is pure and deterministic (no clock, no host
state): it returns ``{relative path: text}`` with stable ordering; only the CLI writes
files. Targets:

- ``k8s``: Kubernetes manifests (``kubectl apply -f DIR``)
- ``helm``: the gpufleet chart with values generated from fleet.yaml
- ``terraform``: EKS GPU node groups + IAM, and the GPU Operator / node-termination
  handler Helm values with their install commands
- ``grafana``: the dashboard JSON
"""

from __future__ import annotations

from collections.abc import Callable

from gpufleet.config import FleetConfig
from gpufleet.deploy.spec import FleetSpec, fleet_spec

TARGETS = ("k8s", "helm", "terraform", "grafana")


def render(config: FleetConfig, target: str) -> dict[str, str]:
    """The files of ``target`` for ``config``; ValueError for an unknown target,
    ConfigError when the fleet cannot be rendered."""
    renderers = _renderers()
    if target not in renderers:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    return renderers[target](fleet_spec(config))


def _renderers() -> dict[str, Callable[[FleetSpec], dict[str, str]]]:
    from gpufleet.deploy.helm import helm_files
    from gpufleet.deploy.k8s import k8s_files
    from gpufleet.deploy.monitoring_objects import dashboard_json
    from gpufleet.deploy.terraform import terraform_files

    return {
        "k8s": k8s_files,
        "helm": helm_files,
        "terraform": terraform_files,
        "grafana": lambda fleet: {"gpufleet-dashboard.json": dashboard_json(fleet)},
    }
