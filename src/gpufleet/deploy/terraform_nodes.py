"""EKS managed node groups of the fleet's pools (part of ``--target terraform``).

Per pool: a launch template (gp3 root volume sized by `root_volume_gib` for the
node-local weights cache, IMDSv2 with hop limit 2 for pods, a cluster placement group
when replicas span nodes) and a managed node group (instance types, ON_DEMAND or SPOT,
min = desired = nodes for the replicas, max = nodes for the autoscaling bound, the
``gpufleet.io/{pool,gpu-type,capacity}`` labels and the ``nvidia.com/gpu`` NoSchedule
taint). Terraform ignores later changes of the desired size (autoscalers own it).
"""

from __future__ import annotations

import math

from gpufleet.deploy.engine_spec import CAPACITY_NODE_LABEL, GPU_TYPE_NODE_LABEL, POOL_NODE_LABEL
from gpufleet.deploy.hcl import BLANK, Attr, Item, Raw, block
from gpufleet.deploy.spec import FleetSpec, PoolSpec

ROOT_VOLUME_BASE_GIB = 200
"""Container images (vLLM ≈ 10 GiB each, several versions), logs and the OS."""


def root_volume_gib(pool: PoolSpec) -> int:
    """Room for the pool's weights twice over (a stale copy while a new one downloads)."""
    return ROOT_VOLUME_BASE_GIB + math.ceil(2 * pool.weight_bytes / 2**30)


def resource_name(pool: PoolSpec) -> str:
    return pool.label.replace("-", "_")


def node_groups(fleet: FleetSpec) -> list[Item]:
    items: list[Item] = []
    for pool in fleet.pools:
        if items:
            items.append(BLANK)
        items += [_launch_template(fleet, pool), BLANK, _node_group(fleet, pool)]
    return items


def _launch_template(fleet: FleetSpec, pool: PoolSpec) -> Item:
    name = resource_name(pool)
    ebs = block(
        "ebs",
        body=[
            Attr("volume_size", Raw(f'var.root_volume_gib["{pool.name}"]')),
            Attr("volume_type", "gp3"),
            Attr("iops", 16000),
            Attr("throughput", 1000),
            Attr("encrypted", True),
            Attr("delete_on_termination", True),
        ],
    )
    body: list[Item] = [
        Attr("name_prefix", Raw(f'"${{var.cluster_name}}-{pool.label}-"')),
        Attr("update_default_version", True),
        BLANK,
        block("block_device_mappings", body=[Attr("device_name", "/dev/xvda"), BLANK, ebs]),
        BLANK,
        block(
            "metadata_options",
            body=[
                Attr("http_endpoint", "enabled"),
                Attr("http_tokens", "required"),
                Attr("http_put_response_hop_limit", 2),
            ],
        ),
    ]
    if multi_node(fleet, pool):
        body += [
            BLANK,
            block("placement", body=[Attr("group_name", Raw(f"aws_placement_group.{name}.name"))]),
        ]
    body += [
        BLANK,
        block(
            "tag_specifications",
            body=[
                Attr("resource_type", "instance"),
                Attr("tags", Raw(f'merge(var.tags, {{ "{POOL_NODE_LABEL}" = "{pool.name}" }})')),
            ],
        ),
    ]
    return block("resource", "aws_launch_template", name, body=body)


def _node_group(fleet: FleetSpec, pool: PoolSpec) -> Item:
    name = resource_name(pool)
    subnets = Raw("[var.subnet_ids[0]]" if multi_node(fleet, pool) else "var.subnet_ids")
    desired = pool.min_nodes
    labels = {
        POOL_NODE_LABEL: pool.label,
        GPU_TYPE_NODE_LABEL: pool.gpu_type,
        CAPACITY_NODE_LABEL: pool.capacity,
    }
    precondition = block(
        "precondition",
        body=[
            Attr("condition", Raw("data.aws_eks_cluster.this.vpc_config[0].vpc_id == var.vpc_id")),
            Attr("error_message", "The cluster is not in var.vpc_id."),
        ],
    )
    return block(
        "resource",
        "aws_eks_node_group",
        name,
        body=[
            Attr("cluster_name", Raw("data.aws_eks_cluster.this.name")),
            Attr("node_group_name_prefix", f"gpufleet-{pool.label}-"),
            Attr("node_role_arn", Raw("aws_iam_role.gpu_node.arn")),
            Attr("subnet_ids", subnets),
            Attr("ami_type", fleet.deploy.aws.ami_type),
            Attr("capacity_type", "SPOT" if pool.capacity == "spot" else "ON_DEMAND"),
            Attr("instance_types", [i.type for i in pool.instance_types]),
            BLANK,
            block(
                "launch_template",
                body=[
                    Attr("id", Raw(f"aws_launch_template.{name}.id")),
                    Attr("version", Raw(f"aws_launch_template.{name}.latest_version")),
                ],
            ),
            BLANK,
            block(
                "scaling_config",
                body=[
                    Attr("min_size", pool.min_nodes),
                    Attr("max_size", max(pool.max_nodes, pool.min_nodes, 1)),
                    Attr("desired_size", desired),
                ],
            ),
            BLANK,
            block("update_config", body=[Attr("max_unavailable", 1)]),
            BLANK,
            Attr("labels", labels),
            BLANK,
            block(
                "taint",
                body=[
                    Attr("key", "nvidia.com/gpu"),
                    Attr("value", "true"),
                    Attr("effect", "NO_SCHEDULE"),
                ],
            ),
            BLANK,
            block(
                "lifecycle",
                body=[
                    Attr("create_before_destroy", True),
                    Attr("ignore_changes", Raw("[scaling_config[0].desired_size]")),
                    BLANK,
                    precondition,
                ],
            ),
            BLANK,
            Attr("depends_on", Raw("[aws_iam_role_policy_attachment.gpu_node]")),
        ],
    )


def multi_node(fleet: FleetSpec, pool: PoolSpec) -> bool:
    return any(e.pool == pool.name and e.num_nodes > 1 for e in fleet.engines)
