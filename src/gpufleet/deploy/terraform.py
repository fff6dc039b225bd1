"""``--target terraform``: EKS GPU node groups for the fleet's pools, and their add-ons.

Contract: ``terraform_files(fleet)`` returns Terraform (AWS provider only) for an
existing EKS cluster named by ``var.cluster_name`` in ``var.vpc_id``:

- per pool: a launch template (gp3 root volume sized for the node-local weights cache,
  IMDSv2 with hop limit 2) and a managed node group: instance types from
  ``instances.yaml``, ON_DEMAND or SPOT from the pool's capacity, min/desired from the
  replicas and max from the autoscaling bound, ``gpufleet.io/{pool,gpu-type,capacity}``
  labels (the engines' node affinity) and an ``nvidia.com/gpu`` NoSchedule taint. Pools
  whose replicas span nodes get a cluster placement group in one subnet;
- the node IAM role (worker, CNI, ECR read, SSM) plus S3 read on the weights buckets;
- variables, outputs, and the Helm values of the NVIDIA GPU Operator and the AWS node
  termination handler with a README of the install commands.

Pools whose GPU type has no AWS instance raise ConfigError.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpufleet.deploy.addons import addon_files
from gpufleet.deploy.hcl import BLANK, Attr, Item, Raw, Value, block, render_file
from gpufleet.deploy.spec import FleetSpec
from gpufleet.deploy.terraform_nodes import multi_node, node_groups, resource_name, root_volume_gib
from gpufleet.errors import ConfigError

NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
)


def terraform_files(fleet: FleetSpec) -> dict[str, str]:
    for pool in fleet.pools:
        if pool.instance is None:
            raise ConfigError(
                f"pools[{pool.name}]: no AWS instance type has {pool.gpu_type} GPUs "
                "(see gpufleet/deploy/instances.yaml)"
            )
    files = {
        "versions.tf": render_file(_versions()),
        "variables.tf": render_file(_variables(fleet)),
        "main.tf": render_file(_main(fleet)),
        "iam.tf": render_file(_iam()),
        "node_groups.tf": render_file(node_groups(fleet)),
        "outputs.tf": render_file(_outputs(fleet)),
    }
    files.update(addon_files(fleet))
    return dict(sorted(files.items()))


def _versions() -> list[Item]:
    aws = {"source": "hashicorp/aws", "version": ">= 5.40, < 7.0"}
    return [
        block(
            "terraform",
            body=[
                Attr("required_version", ">= 1.5.0"),
                BLANK,
                block("required_providers", body=[Attr("aws", aws)]),
            ],
        ),
        BLANK,
        block(
            "provider",
            "aws",
            body=[
                Attr("region", Raw("var.region")),
                BLANK,
                block("default_tags", body=[Attr("tags", Raw("var.tags"))]),
            ],
        ),
    ]


def _variables(fleet: FleetSpec) -> list[Item]:
    buckets = sorted(
        {
            f"arn:aws:s3:::{e.weights.uri[len('s3://') :].split('/', 1)[0]}"
            for e in fleet.engines
            if e.weights is not None and e.weights.uri.startswith("s3://")
        }
    )
    volumes = {pool.name: root_volume_gib(pool) for pool in fleet.pools}
    variables: list[tuple[str, str, str, Value | None]] = [
        ("cluster_name", "string", "Name of the existing EKS cluster.", None),
        ("region", "string", "AWS region of the cluster.", fleet.deploy.aws.region),
        ("vpc_id", "string", "VPC of the cluster (checked against the cluster).", None),
        ("subnet_ids", "list(string)", "Private subnets for the GPU nodes.", None),
        (
            "weights_bucket_arns",
            "list(string)",
            "S3 buckets the GPU nodes may read model weights from.",
            buckets,
        ),
        (
            "root_volume_gib",
            "map(number)",
            "Root volume (OS, images, weights cache) per pool, GiB.",
            volumes,
        ),
        ("tags", "map(string)", "Tags on every resource.", {"gpufleet.io/managed-by": "terraform"}),
    ]
    items: list[Item] = []
    for name, type_, description, default in variables:
        body: list[Item] = [Attr("description", description), Attr("type", Raw(type_))]
        if default is not None:
            body.append(Attr("default", default))
        if name == "subnet_ids":
            body += [
                BLANK,
                block(
                    "validation",
                    body=[
                        Attr("condition", Raw("length(var.subnet_ids) > 0")),
                        Attr("error_message", "Give at least one subnet for the GPU nodes."),
                    ],
                ),
            ]
        if items:
            items.append(BLANK)
        items.append(block("variable", name, body=body))
    return items


def _main(fleet: FleetSpec) -> list[Item]:
    items: list[Item] = [
        block("data", "aws_partition", "current"),
        BLANK,
        block("data", "aws_eks_cluster", "this", body=[Attr("name", Raw("var.cluster_name"))]),
    ]
    for pool in fleet.pools:
        if multi_node(fleet, pool):
            items += [
                BLANK,
                block(
                    "resource",
                    "aws_placement_group",
                    resource_name(pool),
                    body=[
                        Attr("name", Raw(f'"${{var.cluster_name}}-{pool.label}"')),
                        Attr("strategy", "cluster"),
                    ],
                ),
            ]
    return items


def _iam() -> list[Item]:
    assume = block(
        "data",
        "aws_iam_policy_document",
        "node_assume",
        body=[
            block(
                "statement",
                body=[
                    Attr("actions", ["sts:AssumeRole"]),
                    BLANK,
                    block(
                        "principals",
                        body=[Attr("type", "Service"), Attr("identifiers", ["ec2.amazonaws.com"])],
                    ),
                ],
            )
        ],
    )
    weights = block(
        "data",
        "aws_iam_policy_document",
        "weights_read",
        body=[
            block(
                "statement",
                body=[
                    Attr("actions", ["s3:GetObject"]),
                    Attr("resources", Raw('[for arn in var.weights_bucket_arns : "${arn}/*"]')),
                ],
            ),
            BLANK,
            block(
                "statement",
                body=[
                    Attr("actions", ["s3:ListBucket"]),
                    Attr("resources", Raw("var.weights_bucket_arns")),
                ],
            ),
        ],
    )
    policy_arn = '"arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"'
    return [
        assume,
        BLANK,
        block(
            "resource",
            "aws_iam_role",
            "gpu_node",
            body=[
                Attr("name_prefix", Raw('"${var.cluster_name}-gpu-node-"')),
                Attr("assume_role_policy", Raw("data.aws_iam_policy_document.node_assume.json")),
            ],
        ),
        BLANK,
        block(
            "resource",
            "aws_iam_role_policy_attachment",
            "gpu_node",
            body=[
                Attr("for_each", Raw(f"toset({_list_text(NODE_POLICIES)})")),
                BLANK,
                Attr("role", Raw("aws_iam_role.gpu_node.name")),
                Attr("policy_arn", Raw(policy_arn)),
            ],
        ),
        BLANK,
        weights,
        BLANK,
        block(
            "resource",
            "aws_iam_role_policy",
            "weights_read",
            body=[
                Attr("count", Raw("length(var.weights_bucket_arns) > 0 ? 1 : 0")),
                BLANK,
                Attr("name", "gpufleet-weights-read"),
                Attr("role", Raw("aws_iam_role.gpu_node.id")),
                Attr("policy", Raw("data.aws_iam_policy_document.weights_read.json")),
            ],
        ),
    ]


def _outputs(fleet: FleetSpec) -> list[Item]:
    groups = {
        pool.name: Raw(f"aws_eks_node_group.{resource_name(pool)}.node_group_name")
        for pool in fleet.pools
    }
    return [
        block(
            "output",
            "node_role_arn",
            body=[
                Attr("description", "IAM role of the GPU nodes."),
                Attr("value", Raw("aws_iam_role.gpu_node.arn")),
            ],
        ),
        BLANK,
        block(
            "output",
            "node_groups",
            body=[Attr("description", "EKS node group of each pool."), Attr("value", groups)],
        ),
    ]


def _list_text(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"
