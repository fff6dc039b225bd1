"""Cluster add-ons of the GPU node groups, as Helm values files plus their install commands.

- NVIDIA GPU Operator: the EKS AL2023 NVIDIA AMI already carries the driver and the
  container toolkit, so the operator runs the device plugin, GPU feature discovery and
  the DCGM exporter (with a ServiceMonitor) only; ``aws.gpu_time_slicing_replicas > 1``
  adds a time-slicing config the device plugin applies to every GPU node.
- AWS node termination handler (IMDS mode) on spot nodes: cordons and drains a node on
  the 2-minute interruption notice and on rebalance recommendations, honouring each
  pod's grace period (the engines' preStop drain at the gateway runs then).
"""

from __future__ import annotations

from typing import Any

import yaml

from gpufleet.deploy.engine_spec import CAPACITY_NODE_LABEL
from gpufleet.deploy.spec import FleetSpec

GPU_OPERATOR_VERSION = "v25.3.0"


def addon_files(fleet: FleetSpec) -> dict[str, str]:
    files = {
        "gpu-operator-values.yaml": _dump(gpu_operator_values(fleet)),
        "README.md": readme(fleet),
    }
    if any(pool.capacity == "spot" for pool in fleet.pools):
        files["node-termination-handler-values.yaml"] = _dump(termination_handler_values())
    return files


def gpu_operator_values(fleet: FleetSpec) -> dict[str, Any]:
    monitoring = fleet.deploy.monitoring
    device_plugin: dict[str, Any] = {"enabled": True}
    replicas = fleet.deploy.aws.gpu_time_slicing_replicas
    if replicas > 1:
        sharing = {
            "version": "v1",
            "sharing": {
                "timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": replicas}]}
            },
        }
        device_plugin["config"] = {
            "create": True,
            "name": "time-slicing-config",
            "default": "any",
            "data": {"any": yaml.safe_dump(sharing, sort_keys=False)},
        }
    return {
        "driver": {"enabled": False},
        "toolkit": {"enabled": False},
        "devicePlugin": device_plugin,
        "gfd": {"enabled": True},
        "nfd": {"enabled": True},
        "migManager": {"enabled": False},
        "dcgmExporter": {
            "enabled": True,
            "serviceMonitor": {
                "enabled": monitoring.enabled,
                "interval": f"{monitoring.scrape_interval_s}s",
                "additionalLabels": dict(monitoring.labels),
            },
        },
        "daemonsets": {
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        },
    }


def termination_handler_values() -> dict[str, Any]:
    return {
        "enableSpotInterruptionDraining": True,
        "enableRebalanceMonitoring": True,
        "enableRebalanceDraining": True,
        "enableScheduledEventDraining": True,
        "podTerminationGracePeriod": -1,
        "nodeTerminationGracePeriod": 120,
        "emitKubernetesEvents": True,
        "nodeSelector": {CAPACITY_NODE_LABEL: "spot"},
        "daemonsetTolerations": [{"operator": "Exists"}],
    }


def readme(fleet: FleetSpec) -> str:
    lines = [
        "# EKS GPU node groups for this fleet (rendered by `gpufleet render --target terraform`)",
        "",
        "Pools: "
        + ", ".join(
            f"`{p.name}` ({p.capacity}, {', '.join(i.type for i in p.instance_types)}, "
            f"{p.min_nodes}–{p.max_nodes} nodes)"
            for p in fleet.pools
        ),
        "",
        "```sh",
        "terraform init",
        "terraform apply -var cluster_name=CLUSTER -var vpc_id=VPC_ID \\",
        '  -var \'subnet_ids=["subnet-aaa","subnet-bbb"]\'',
        "aws eks update-kubeconfig --name CLUSTER --region " + fleet.deploy.aws.region,
        "",
        "helm repo add nvidia https://helm.ngc.nvidia.com/nvidia",
        "helm repo add eks https://aws.github.io/eks-charts",
        "helm repo update",
        "helm upgrade --install gpu-operator nvidia/gpu-operator --version "
        + GPU_OPERATOR_VERSION
        + " \\",
        "  --namespace gpu-operator --create-namespace -f gpu-operator-values.yaml",
    ]
    if any(pool.capacity == "spot" for pool in fleet.pools):
        lines += [
            "helm upgrade --install aws-node-termination-handler \\",
            "  eks/aws-node-termination-handler --namespace kube-system \\",
            "  -f node-termination-handler-values.yaml",
        ]
    lines += [
        "```",
        "",
        "Then check that every GPU node advertises its GPUs:",
        "",
        "```sh",
        "kubectl get nodes -l gpufleet.io/gpu-type "
        "-o custom-columns=NAME:.metadata.name,POOL:.metadata.labels.gpufleet\\.io/pool,"
        "GPUS:.status.allocatable.nvidia\\.com/gpu",
        "```",
        "",
        "The engines also need KEDA, the Prometheus Operator (kube-prometheus-stack), the",
        "LeaderWorkerSet controller when a model spans nodes, and the AWS Load Balancer",
        "Controller (or Istio) for the entry point: see docs/deploy-eks.md.",
        "",
    ]
    return "\n".join(lines)


def _dump(data: dict[str, Any]) -> str:
    header = "# Rendered by `gpufleet render --target terraform`; see README.md.\n"
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
