output "node_role_arn" {
  description = "IAM role of the GPU nodes."
  value       = aws_iam_role.gpu_node.arn
}

output "node_groups" {
  description = "EKS node group of each pool."
  value = {
    h100-on-demand = aws_eks_node_group.h100_on_demand.node_group_name
    l40s-spot      = aws_eks_node_group.l40s_spot.node_group_name
    h100-tp4       = aws_eks_node_group.h100_tp4.node_group_name
  }
}
