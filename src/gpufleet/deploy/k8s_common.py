"""Shared pieces of the Kubernetes objects gpufleet renders (plain dicts, no client types).

Conventions every builder follows (the Helm templates mirror them): quantities are
strings, keys appear in the order Kubernetes documents them, empty optional fields are
left out rather than rendered empty, and nothing depends on the clock or the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

from gpufleet.deploy.engine_spec import (
    CAPACITY_NODE_LABEL,
    GPU_TYPE_NODE_LABEL,
    POOL_NODE_LABEL,
)

KObject = dict[str, Any]
"""One Kubernetes object as JSON-compatible data."""

PART_OF: Mapping[str, str] = MappingProxyType({"app.kubernetes.io/part-of": "gpufleet"})
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION: Mapping[str, str] = MappingProxyType(
    {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
)
ENGINE_SERVICE_ACCOUNT = "gpufleet-engine"
ENGINE_SCRIPTS = "gpufleet-engine-scripts"
SCRIPTS_MOUNT = "/opt/gpufleet"
SCRIPT_NAMES = ("drain.py", "fetch-weights.sh")
EXECUTABLE_MODE = 0o555


def meta(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
) -> KObject:
    """``metadata`` of a namespaced object."""
    out: KObject = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def component_labels(name: str, component: str) -> dict[str, str]:
    """The standard labels of a gpufleet object other than an engine."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        **PART_OF,
    }


def gpu_node_affinity(gpu_type: str, capacity: str, pool_label: str) -> KObject:
    """Required: the pool's GPU type and capacity type; preferred: the pool's own nodes."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": GPU_TYPE_NODE_LABEL, "operator": "In", "values": [gpu_type]},
                            {"key": CAPACITY_NODE_LABEL, "operator": "In", "values": [capacity]},
                        ]
                    }
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "preference": {
                        "matchExpressions": [
                            {"key": POOL_NODE_LABEL, "operator": "In", "values": [pool_label]}
                        ]
                    },
                }
            ],
        }
    }


def script_text(name: str) -> str:
    """The text of a packaged hook script (``deploy/scripts/<name>``)."""
    return (resources.files("gpufleet.deploy") / "scripts" / name).read_text("utf-8")
