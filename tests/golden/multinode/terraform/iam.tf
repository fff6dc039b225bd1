data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "gpu_node" {
  name_prefix        = "${var.cluster_name}-gpu-node-"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

resource "aws_iam_role_policy_attachment" "gpu_node" {
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"])

  role       = aws_iam_role.gpu_node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"
}

data "aws_iam_policy_document" "weights_read" {
  statement {
    actions   = ["s3:GetObject"]
    resources = [for arn in var.weights_bucket_arns : "${arn}/*"]
  }

  statement {
    actions   = ["s3:ListBucket"]
    resources = var.weights_bucket_arns
  }
}

resource "aws_iam_role_policy" "weights_read" {
  count = length(var.weights_bucket_arns) > 0 ? 1 : 0

  name   = "gpufleet-weights-read"
  role   = aws_iam_role.gpu_node.id
  policy = data.aws_iam_policy_document.weights_read.json
}
