output "node_role_arn" {
  description = "IAM role of the GPU nodes."
  value       = aws_iam_role.gpu_node.arn
}

output "node_groups" {
  description = "EKS node group of each pool."
  value = {
    a10g = aws_eks_node_group.a10g.node_group_name
  }
}
