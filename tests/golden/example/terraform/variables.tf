variable "cluster_name" {
  description = "Name of the existing EKS cluster."
  type        = string
}

variable "region" {
  description = "AWS region of the cluster."
  type        = string
  default     = "us-east-1"
}

variable "vpc_id" {
  description = "VPC of the cluster (checked against the cluster)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the GPU nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "Give at least one subnet for the GPU nodes."
  }
}

variable "weights_bucket_arns" {
  description = "S3 buckets the GPU nodes may read model weights from."
  type        = list(string)
  default     = []
}

variable "root_volume_gib" {
  description = "Root volume (OS, images, weights cache) per pool, GiB."
  type        = map(number)
  default = {
    h100-on-demand = 230
    l40s-spot      = 230
    h100-tp4       = 463
  }
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default = {
    "gpufleet.io/managed-by" = "terraform"
  }
}
