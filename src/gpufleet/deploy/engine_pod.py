"""Pod templates of the vLLM engines: single-node pods and LeaderWorkerSet leader/worker.

Contract: pure functions of an `EngineSpec` and the fleet's deploy settings. Probes:
``startupProbe`` on /health every 10 s for the spec's start-up budget (weights load
time), then ``readinessProbe`` every 5 s (3 failures: out of the Service) and
``livenessProbe`` every 10 s (6 failures: restart). The preStop hook drains the
replica at every gateway (``drain.py``) within ``drain_timeout_s``; the grace period
adds 30 s for vLLM to stop.
"""

from __future__ import annotations

from typing import Any

from gpufleet.deploy.engine_spec import HF_HOME, MODELS_MOUNT, PROBE_PERIOD_S, EngineSpec
from gpufleet.deploy.k8s_common import (
    ENGINE_SCRIPTS,
    ENGINE_SERVICE_ACCOUNT,
    EXECUTABLE_MODE,
    GPU_RESOURCE,
    GPU_TOLERATION,
    SCRIPTS_MOUNT,
    KObject,
    gpu_node_affinity,
)
from gpufleet.deploy.settings import DeployConfig
from gpufleet.deploy.spec import GATEWAY_NAME, FleetSpec

MULTI_NODE_SCRIPT = "/vllm-workspace/examples/online_serving/multi-node-serving.sh"
"""Ray bootstrap shipped in the vllm/vllm-openai image (LeaderWorkerSet recipe)."""


def engine_pod(spec: EngineSpec, fleet: FleetSpec, role: str = "single") -> KObject:
    """The pod template of ``spec``: ``role`` is ``single``, ``leader`` or ``worker``."""
    deploy = fleet.deploy
    serving = role != "worker"
    container: KObject = {"name": "vllm", "image": spec.image}
    if role == "single":
        container["command"] = ["vllm", "serve"]
        container["args"] = list(spec.args)
    elif role == "leader":
        serve = "vllm serve" + "".join(f" '{arg}'" for arg in spec.args)
        container["command"] = ["/bin/sh", "-c"]
        container["args"] = [
            f"bash {MULTI_NODE_SCRIPT} leader --ray_cluster_size=$LWS_GROUP_SIZE && exec {serve}"
        ]
    else:
        container["command"] = ["/bin/sh", "-c"]
        container["args"] = [
            f"exec bash {MULTI_NODE_SCRIPT} worker --ray_address=$LWS_LEADER_ADDRESS"
        ]
    container["env"] = _engine_env(spec, fleet, serving)
    port = deploy.engine.port
    if serving:
        container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    gpus = str(spec.gpus_per_pod)
    container["resources"] = {
        "requests": {"cpu": spec.cpu, "memory": spec.memory, GPU_RESOURCE: gpus},
        "limits": {GPU_RESOURCE: gpus},
    }
    if serving:
        container.update(_probes(spec))
        container["lifecycle"] = {
            "preStop": {"exec": {"command": ["python3", f"{SCRIPTS_MOUNT}/drain.py"]}}
        }
    container["volumeMounts"] = [
        {"name": "models", "mountPath": MODELS_MOUNT},
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "scripts", "mountPath": SCRIPTS_MOUNT, "readOnly": True},
    ]
    pod: KObject = {
        "serviceAccountName": ENGINE_SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": spec.termination_grace_s,
        "affinity": gpu_node_affinity(spec.gpu_type, spec.capacity, spec.pool_label),
        "tolerations": [dict(GPU_TOLERATION)],
    }
    if spec.weights is not None:
        pod["initContainers"] = [
            fetch_container(
                "fetch-weights", spec.weights.uri, spec.weights.sha256, spec.weights.dir, deploy
            )
        ]
    pod["containers"] = [container]
    pod["volumes"] = [
        models_volume(deploy),
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.shm_size}},
        scripts_volume(),
    ]
    return pod


def fetch_container(
    name: str, uri: str, sha256: str, directory: str, deploy: DeployConfig
) -> KObject:
    """An init container running ``fetch-weights.sh`` for one model."""
    return {
        "name": name,
        "image": deploy.weights.fetch_image,
        "command": ["/bin/sh", f"{SCRIPTS_MOUNT}/fetch-weights.sh"],
        "env": [
            {"name": "WEIGHTS_URI", "value": uri},
            {"name": "WEIGHTS_SHA256", "value": sha256},
            {"name": "WEIGHTS_DIR", "value": directory},
        ],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
        "volumeMounts": [
            {"name": "models", "mountPath": MODELS_MOUNT},
            {"name": "scripts", "mountPath": SCRIPTS_MOUNT, "readOnly": True},
        ],
    }


def models_volume(deploy: DeployConfig) -> KObject:
    return {
        "name": "models",
        "hostPath": {"path": deploy.weights.cache_dir, "type": "DirectoryOrCreate"},
    }


def scripts_volume() -> KObject:
    return {
        "name": "scripts",
        "configMap": {"name": ENGINE_SCRIPTS, "defaultMode": EXECUTABLE_MODE},
    }


def _engine_env(spec: EngineSpec, fleet: FleetSpec, serving: bool) -> list[KObject]:
    deploy = fleet.deploy
    env: list[KObject] = [{"name": "HF_HOME", "value": HF_HOME}]
    secret = deploy.engine.hf_token_secret
    if secret is not None:
        ref = {"name": secret, "key": "token", "optional": True}
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    if serving:
        env += [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "ENGINE_PORT", "value": str(deploy.engine.port)},
            {
                "name": "GPUFLEET_GATEWAY_HOST",
                "value": f"{GATEWAY_NAME}-headless.{deploy.namespace}.svc",
            },
            {"name": "GPUFLEET_GATEWAY_PORT", "value": str(fleet.gateway.port)},
            {"name": "DRAIN_TIMEOUT_S", "value": str(spec.drain_timeout_s)},
        ]
    return env


def _probes(spec: EngineSpec) -> dict[str, Any]:
    http = {"path": "/health", "port": "http"}
    return {
        "startupProbe": {
            "httpGet": dict(http),
            "periodSeconds": PROBE_PERIOD_S,
            "timeoutSeconds": 5,
            "failureThreshold": spec.startup_failure_threshold,
        },
        "readinessProbe": {
            "httpGet": dict(http),
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": dict(http),
            "periodSeconds": PROBE_PERIOD_S,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
    }
