resource "aws_launch_template" "a10g" {
  name_prefix            = "${var.cluster_name}-a10g-"
  update_default_version = true

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_gib["a10g"]
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
    tags          = merge(var.tags, { "gpufleet.io/pool" = "a10g" })
  }
}

resource "aws_eks_node_group" "a10g" {
  cluster_name           = data.aws_eks_cluster.this.name
  node_group_name_prefix = "gpufleet-a10g-"
  node_role_arn          = aws_iam_role.gpu_node.arn
  subnet_ids             = var.subnet_ids
  ami_type               = "AL2023_x86_64_NVIDIA"
  capacity_type          = "ON_DEMAND"
  instance_types         = ["g5.xlarge"]

  launch_template {
    id      = aws_launch_template.a10g.id
    version = aws_launch_template.a10g.latest_version
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
    "gpufleet.io/pool"     = "a10g"
    "gpufleet.io/gpu-type" = "a10g"
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
