resource "aws_launch_template" "h100_multinode" {
  name_prefix            = "${var.cluster_name}-h100-multinode-"
  update_default_version = true

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_gib["h100-multinode"]
      volume_type           = "gp3"
      iops                  = 16000
      throughput            = 1000
      encrypted             = true
      delete_on_termination = true
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  placement {
    group_name = aws_placement_group.h100_multinode.name
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { "gpufleet.io/pool" = "h100-multinode" })
  }
}

resource "aws_eks_node_group" "h100_multinode" {
  cluster_name           = data.aws_eks_cluster.this.name
  node_group_name_prefix = "gpufleet-h100-multinode-"
  node_role_arn          = aws_iam_role.gpu_node.arn
  subnet_ids             = [var.subnet_ids[0]]
  ami_type               = "AL2023_x86_64_NVIDIA"
  capacity_type          = "ON_DEMAND"
  instance_types         = ["p5.48xlarge"]

  launch_template {
    id      = aws_launch_template.h100_multinode.id
    version = aws_launch_template.h100_multinode.latest_version
  }

  scaling_config {
    min_size     = 2
    max_size     = 8
    desired_size = 2
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    "gpufleet.io/pool"     = "h100-multinode"
    "gpufleet.io/gpu-type" = "h100-sxm"
    "gpufleet.io/capacity" = "on-demand"
  }

  taint {
    key    = "nvidia.com/gpu"
    value  = "true"
    effect = "NO_SCHEDULE"
  }

  lifecycle {
    create_before_destroy = true
    ignore_changes        = [scaling_config[0].desired_size]

    precondition {
      condition     = data.aws_eks_cluster.this.vpc_config[0].vpc_id == var.vpc_id
      error_message = "The cluster is not in var.vpc_id."
    }
  }

  depends_on = [aws_iam_role_policy_attachment.gpu_node]
}

resource "aws_launch_template" "l4_spot" {
  name_prefix            = "${var.cluster_name}-l4-spot-"
  update_default_version = true

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_gib["l4-spot"]
      volume_type           = "gp3"
      iops                  = 16000
      throughput            = 1000
      encrypted             = true
      delete_on_termination = true
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { "gpufleet.io/pool" = "l4-spot" })
  }
}

resource "aws_eks_node_group" "l4_spot" {
  cluster_name           = data.aws_eks_cluster.this.name
  node_group_name_prefix = "gpufleet-l4-spot-"
  node_role_arn          = aws_iam_role.gpu_node.arn
  subnet_ids             = var.subnet_ids
  ami_type               = "AL2023_x86_64_NVIDIA"
  capacity_type          = "SPOT"
  instance_types         = ["g6.xlarge", "g6.2xlarge", "g6.4xlarge", "g6.8xlarge"]

  launch_template {
    id      = aws_launch_template.l4_spot.id
    version = aws_launch_template.l4_spot.latest_version
  }

  scaling_config {
    min_size     = 3
    max_size     = 12
    desired_size = 3
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    "gpufleet.io/pool"     = "l4-spot"
    "gpufleet.io/gpu-type" = "l4"
    "gpufleet.io/capacity" = "spot"
  }

  taint {
    key    = "nvidia.com/gpu"
    value  = "true"
    effect = "NO_SCHEDULE"
  }

  lifecycle {
    create_before_destroy = true
    ignore_changes        = [scaling_config[0].desired_size]

    precondition {
      condition     = data.aws_eks_cluster.this.vpc_config[0].vpc_id == var.vpc_id
      error_message = "The cluster is not in var.vpc_id."
    }
  }

  depends_on = [aws_iam_role_policy_attachment.gpu_node]
}

resource "aws_launch_template" "h200" {
  name_prefix            = "${var.cluster_name}-h200-"
  update_default_version = true

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_gib["h200"]
      volume_type           = "gp3"
      iops                  = 16000
      throughput            = 1000
      encrypted             = true
      delete_on_termination = true
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { "gpufleet.io/pool" = "h200" })
  }
}

resource "aws_eks_node_group" "h200" {
  cluster_name           = data.aws_eks_cluster.this.name
  node_group_name_prefix = "gpufleet-h200-"
  node_role_arn          = aws_iam_role.gpu_node.arn
  subnet_ids             = var.subnet_ids
  ami_type               = "AL2023_x86_64_NVIDIA"
  capacity_type          = "ON_DEMAND"
  instance_types         = ["p5e.48xlarge"]

  launch_template {
    id      = aws_launch_template.h200.id
    version = aws_launch_template.h200.latest_version
  }

  scaling_config {
    min_size     = 2
    max_size     = 3
    desired_size = 2
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    "gpufleet.io/pool"     = "h200"
    "gpufleet.io/gpu-type" = "h200"
    "gpufleet.io/capacity" = "on-demand"
  }

  taint {
    key    = "nvidia.com/gpu"
    value  = "true"
    effect = "NO_SCHEDULE"
  }

  lifecycle {
    create_before_destroy = true
    ignore_changes        = [scaling_config[0].desired_size]

    precondition {
      condition     = data.aws_eks_cluster.this.vpc_config[0].vpc_id == var.vpc_id
      error_message = "The cluster is not in var.vpc_id."
    }
  }

  depends_on = [aws_iam_role_policy_attachment.gpu_node]
}
