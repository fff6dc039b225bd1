output "node_role_arn" {
  description = "IAM role of the GPU nodes."
  value       = aws_iam_role.gpu_node.arn
}

output "node_groups" {
  description = "EKS node group of each pool."
  value = {
    h100-multinode = aws_eks_node_group.h100_multinode.node_group_name
    l4-spot        = aws_eks_node_group.l4_spot.node_group_name
    h200           = aws_eks_node_group.h200.node_group_name
  }
}
