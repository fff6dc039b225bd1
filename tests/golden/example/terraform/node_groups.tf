resource "aws_launch_template" "h100_on_demand" {
  name_prefix            = "${var.cluster_name}-h100-on-demand-"
  update_default_version = true

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_gib["h100-on-demand"]
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
    tags          = merge(var.tags, { "gpufleet.io/pool" = "h100-on-demand" })
  }
}

resource "aws_eks_node_group" "h100_on_demand" {
  cluster_name           = data.aws_eks_cluster.this.name
  node_group_name_prefix = "gpufleet-h100-on-demand-"
  node_role_arn          = aws_iam_role.gpu_node.arn
  subnet_ids             = var.subnet_ids
  ami_type               = "AL2023_x86_64_NVIDIA"
  capacity_type          = "ON_DEMAND"
  instance_types         = ["p5.48xlarge"]

  launch_template {
    id      = aws_launch_template.h100_on_demand.id
    version = aws_launch_template.h100_on_demand.latest_version
  }

  scaling_config {
    min_size     = 1
    max_size     = 1
    desired_size = 1
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    "gpufleet.io/pool"     = "h100-on-demand"
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

resource "aws_launch_template" "l40s_spot" {
  name_prefix            = "${var.cluster_name}-l40s-spot-"
  update_default_version = true

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_gib["l40s-spot"]
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
    tags          = merge(var.tags, { "gpufleet.io/pool" = "l40s-spot" })
  }
}

resource "aws_eks_node_group" "l40s_spot" {
  cluster_name           = data.aws_eks_cluster.this.name
  node_group_name_prefix = "gpufleet-l40s-spot-"
  node_role_arn          = aws_iam_role.gpu_node.arn
  subnet_ids             = var.subnet_ids
  ami_type               = "AL2023_x86_64_NVIDIA"
  capacity_type          = "SPOT"
  instance_types         = ["g6e.xlarge", "g6e.2xlarge", "g6e.4xlarge", "g6e.8xlarge"]

  launch_template {
    id      = aws_launch_template.l40s_spot.id
    version = aws_launch_template.l40s_spot.latest_version
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
    "gpufleet.io/pool"     = "l40s-spot"
    "gpufleet.io/gpu-type" = "l40s"
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

resource "aws_launch_template" "h100_tp4" {
  name_prefix            = "${var.cluster_name}-h100-tp4-"
  update_default_version = true

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_gib["h100-tp4"]
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
    tags          = merge(var.tags, { "gpufleet.io/pool" = "h100-tp4" })
  }
}

resource "aws_eks_node_group" "h100_tp4" {
  cluster_name           = data.aws_eks_cluster.this.name
  node_group_name_prefix = "gpufleet-h100-tp4-"
  node_role_arn          = aws_iam_role.gpu_node.arn
  subnet_ids             = var.subnet_ids
  ami_type               = "AL2023_x86_64_NVIDIA"
  capacity_type          = "ON_DEMAND"
  instance_types         = ["p5.48xlarge"]

  launch_template {
    id      = aws_launch_template.h100_tp4.id
    version = aws_launch_template.h100_tp4.latest_version
  }

  scaling_config {
    min_size     = 1
    max_size     = 2
    desired_size = 1
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    "gpufleet.io/pool"     = "h100-tp4"
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
