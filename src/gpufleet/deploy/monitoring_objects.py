"""Prometheus Operator monitors and the Grafana dashboard ConfigMap.

The gateway's ServiceMonitor keeps the gateway's own ``endpoint``/``model``/``pool``/
``gpu`` labels (``honorLabels``; Prometheus would otherwise rename ``endpoint``, which
it also sets). The engines' PodMonitor copies the pods' gpufleet labels onto every
``vllm:*`` series as ``model``, ``pool`` and ``gpu``, the names the dashboard uses.
"""

from __future__ import annotations

import json

from gpufleet.backends.discovery_labels import (
    ENGINE_NAME,
    GPU_LABEL,
    MODEL_LABEL,
    NAME_LABEL,
    POOL_LABEL,
)
from gpufleet.deploy.dashboard import dashboard
from gpufleet.deploy.k8s_common import KObject, component_labels, meta
from gpufleet.deploy.spec import FleetSpec

MONITORING_API = "monitoring.coreos.com/v1"


def monitoring_objects(fleet: FleetSpec) -> list[KObject]:
    objects: list[KObject] = []
    settings = fleet.deploy.monitoring
    if settings.enabled:
        objects += [service_monitor(fleet), pod_monitor(fleet)]
    if settings.dashboard_configmap:
        objects.append(dashboard_config_map(fleet))
    return objects


def service_monitor(fleet: FleetSpec) -> KObject:
    settings = fleet.deploy.monitoring
    labels = {**component_labels(fleet.gateway.name, "gateway"), **settings.labels}
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": meta(fleet.gateway.name, fleet.namespace, labels),
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": fleet.gateway.name,
                    "app.kubernetes.io/component": "gateway",
                }
            },
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": f"{settings.scrape_interval_s}s",
                    "honorLabels": True,
                }
            ],
        },
    }


def pod_monitor(fleet: FleetSpec) -> KObject:
    settings = fleet.deploy.monitoring
    labels = {**component_labels("gpufleet-engines", "engine"), **settings.labels}
    relabelings = [
        {
            "sourceLabels": [f"__meta_kubernetes_pod_label_{_prom(key)}"],
            "targetLabel": target,
        }
        for key, target in ((MODEL_LABEL, "model"), (POOL_LABEL, "pool"), (GPU_LABEL, "gpu"))
    ]
    return {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": meta("gpufleet-engines", fleet.namespace, labels),
        "spec": {
            "selector": {"matchLabels": {NAME_LABEL: ENGINE_NAME}},
            "podMetricsEndpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": f"{settings.scrape_interval_s}s",
                    "relabelings": relabelings,
                }
            ],
        },
    }


def dashboard_json(fleet: FleetSpec) -> str:
    return json.dumps(dashboard(fleet), indent=2, sort_keys=True) + "\n"


def dashboard_config_map(fleet: FleetSpec) -> KObject:
    """Picked up by Grafana's dashboard sidecar (label ``grafana_dashboard: "1"``)."""
    labels = {**component_labels("gpufleet-dashboard", "monitoring"), "grafana_dashboard": "1"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("gpufleet-dashboard", fleet.namespace, labels),
        "data": {"gpufleet.json": dashboard_json(fleet)},
    }


def _prom(label: str) -> str:
    """A Kubernetes label key as Prometheus spells it in ``__meta_kubernetes_*`` labels."""
    return "".join(c if c.isalnum() else "_" for c in label)
