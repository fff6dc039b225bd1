"""Kubernetes objects of the engines: per (model, pool) workload, plus what they share.

Per workload: a Deployment (one pod per replica) or a LeaderWorkerSet (a replica spans
nodes), a headless Service whose labels the gateway's discovery selects, a
PodDisruptionBudget (one replica at a time) and, with autoscaling, a KEDA ScaledObject
(then the workload leaves ``replicas`` to KEDA). Shared: the engines' ServiceAccount,
the hook scripts' ConfigMap and, with ``weights.prewarm``, a DaemonSet per pool that
fills each GPU node's weights cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gpufleet.deploy.engine_pod import engine_pod, fetch_container, models_volume, scripts_volume
from gpufleet.deploy.engine_spec import EngineSpec
from gpufleet.deploy.k8s_common import (
    ENGINE_SCRIPTS,
    ENGINE_SERVICE_ACCOUNT,
    GPU_TOLERATION,
    PART_OF,
    SCRIPT_NAMES,
    KObject,
    component_labels,
    gpu_node_affinity,
    meta,
    script_text,
)
from gpufleet.deploy.spec import FleetSpec

LWS_API = "leaderworkerset.x-k8s.io/v1"
LWS_LEADER_SELECTOR: Mapping[str, str] = MappingProxyType(
    {"leaderworkerset.sigs.k8s.io/worker-index": "0"}
)
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def engine_objects(spec: EngineSpec, fleet: FleetSpec) -> list[KObject]:
    """The workload, Service, PDB and ScaledObject of one engine."""
    objects = [workload(spec, fleet), headless_service(spec, fleet), disruption_budget(spec, fleet)]
    if fleet.deploy.autoscaling.enabled:
        objects.append(scaled_object(spec, fleet))
    return objects


def workload(spec: EngineSpec, fleet: FleetSpec) -> KObject:
    autoscaled = fleet.deploy.autoscaling.enabled
    template_meta = {
        "labels": dict(spec.labels),
        "annotations": {"kubectl.kubernetes.io/default-container": "vllm"},
    }
    if spec.num_nodes == 1:
        body: KObject = {}
        if not autoscaled:
            body["replicas"] = spec.replicas
        body["selector"] = {"matchLabels": dict(spec.selector)}
        body["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }
        body["template"] = {"metadata": template_meta, "spec": engine_pod(spec, fleet)}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(spec.name, fleet.namespace, spec.labels),
            "spec": body,
        }
    lws: KObject = {}
    if not autoscaled:
        lws["replicas"] = spec.replicas
    lws["leaderWorkerTemplate"] = {
        "size": spec.num_nodes,
        "restartPolicy": "RecreateGroupOnPodRestart",
        "leaderTemplate": {"metadata": template_meta, "spec": engine_pod(spec, fleet, "leader")},
        "workerTemplate": {
            "metadata": {"labels": dict(spec.labels)},
            "spec": engine_pod(spec, fleet, "worker"),
        },
    }
    lws["startupPolicy"] = "LeaderCreated"
    return {
        "apiVersion": LWS_API,
        "kind": "LeaderWorkerSet",
        "metadata": meta(spec.name, fleet.namespace, spec.labels),
        "spec": lws,
    }


def headless_service(spec: EngineSpec, fleet: FleetSpec) -> KObject:
    """Selects the serving pods (LWS leaders); its labels reach the EndpointSlices."""
    selector = dict(spec.selector)
    if spec.num_nodes > 1:
        selector.update(LWS_LEADER_SELECTOR)
    port = fleet.deploy.engine.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(spec.name, fleet.namespace, spec.labels),
        "spec": {
            "clusterIP": "None",
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def disruption_budget(spec: EngineSpec, fleet: FleetSpec) -> KObject:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(spec.name, fleet.namespace, spec.labels),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(spec.selector)}},
    }


def scaled_object(spec: EngineSpec, fleet: FleetSpec) -> KObject:
    """KEDA: replicas follow the queued + in-flight requests per replica at the gateways."""
    scaling = fleet.deploy.autoscaling
    target = {"name": spec.name}
    if spec.num_nodes == 1:
        target = {"apiVersion": "apps/v1", "kind": "Deployment", **target}
    else:
        target = {"apiVersion": LWS_API, "kind": "LeaderWorkerSet", **target}
    scale_down = {
        "stabilizationWindowSeconds": scaling.scale_down_window_s,
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
    }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": meta(spec.name, fleet.namespace, spec.labels),
        "spec": {
            "scaleTargetRef": target,
            "pollingInterval": scaling.polling_interval_s,
            "cooldownPeriod": scaling.cooldown_s,
            "minReplicaCount": spec.replicas,
            "maxReplicaCount": max(spec.max_replicas, spec.replicas),
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": scale_down}}},
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": scaling.prometheus_url,
                        "query": spec.queue_query,
                        "threshold": _number(scaling.target_requests_per_replica),
                    },
                }
            ],
        },
    }


def shared_engine_objects(fleet: FleetSpec) -> list[KObject]:
    """The engines' ServiceAccount and hook-scripts ConfigMap."""
    labels = component_labels("gpufleet-engine", "engine")
    annotations = {}
    role = fleet.deploy.engine.service_account_role_arn
    if role:
        annotations["eks.amazonaws.com/role-arn"] = role
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(ENGINE_SERVICE_ACCOUNT, fleet.namespace, labels, annotations),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(ENGINE_SCRIPTS, fleet.namespace, labels),
            "data": {name: script_text(name) for name in SCRIPT_NAMES},
        },
    ]


def prewarm_daemonsets(fleet: FleetSpec) -> list[KObject]:
    """With ``weights.prewarm``: per pool, a DaemonSet whose init containers fill the
    cache of every node of the pool with the weights of the pool's models."""
    out = []
    for prewarm in fleet.prewarm:
        selector = {
            "app.kubernetes.io/name": "gpufleet-prewarm",
            "app.kubernetes.io/instance": prewarm.name,
        }
        labels = {**selector, "app.kubernetes.io/component": "prewarm", **PART_OF}
        pod: KObject = {
            "serviceAccountName": ENGINE_SERVICE_ACCOUNT,
            "automountServiceAccountToken": False,
            "affinity": gpu_node_affinity(prewarm.gpu_type, prewarm.capacity, prewarm.pool_label),
            "tolerations": [dict(GPU_TOLERATION)],
            "initContainers": [
                fetch_container(f.name, f.uri, f.sha256, f.dir, fleet.deploy)
                for f in prewarm.fetches
            ],
            "containers": [
                {
                    "name": "pause",
                    "image": PAUSE_IMAGE,
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
            "volumes": [models_volume(fleet.deploy), scripts_volume()],
        }
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": meta(prewarm.name, fleet.namespace, labels),
                "spec": {
                    "selector": {"matchLabels": selector},
                    "template": {"metadata": {"labels": labels}, "spec": pod},
                },
            }
        )
    return out


def _number(value: float) -> str:
    """KEDA metadata values are strings; whole numbers without a trailing '.0'."""
    return str(int(value)) if value == int(value) else repr(value)
