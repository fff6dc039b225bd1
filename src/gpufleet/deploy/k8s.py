"""``--target k8s``: every Kubernetes object of the fleet, as YAML files.

Contract: ``k8s_objects(fleet)`` lists the objects in a fixed order (gateway, shared
engine objects, each engine as fleet.yaml orders them, monitoring); ``k8s_files``
groups them into files (path → text) for ``kubectl apply -f DIR``. The namespace
itself is not rendered (``kubectl create namespace`` or ``helm --create-namespace``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from gpufleet.deploy.engine_objects import (
    engine_objects,
    prewarm_daemonsets,
    shared_engine_objects,
)
from gpufleet.deploy.gateway_objects import gateway_objects
from gpufleet.deploy.k8s_common import KObject
from gpufleet.deploy.monitoring_objects import monitoring_objects
from gpufleet.deploy.spec import FleetSpec


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (scripts, fleet.yaml, dashboard JSON)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    """Deterministic YAML: keys in insertion order, block scalars for multi-line text."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def dump_documents(objects: Iterable[KObject]) -> str:
    return "".join("---\n" + dump_yaml(obj) for obj in objects)


def k8s_groups(fleet: FleetSpec) -> list[tuple[str, list[KObject]]]:
    """(file name, objects) in apply order."""
    groups = [
        ("gateway.yaml", gateway_objects(fleet)),
        ("engines-shared.yaml", shared_engine_objects(fleet) + prewarm_daemonsets(fleet)),
    ]
    for engine in fleet.engines:
        groups.append((f"engine-{engine.name}.yaml", engine_objects(engine, fleet)))
    monitoring = monitoring_objects(fleet)
    if monitoring:
        groups.append(("monitoring.yaml", monitoring))
    return groups


def k8s_objects(fleet: FleetSpec) -> list[KObject]:
    return [obj for _, objects in k8s_groups(fleet) for obj in objects]


def k8s_files(fleet: FleetSpec) -> dict[str, str]:
    return {name: dump_documents(objects) for name, objects in k8s_groups(fleet)}
