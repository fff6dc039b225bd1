data "aws_partition" "current" {
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

resource "aws_placement_group" "h100_multinode" {
  name     = "${var.cluster_name}-h100-multinode"
  strategy = "cluster"
}
