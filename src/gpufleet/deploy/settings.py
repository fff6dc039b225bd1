"""fleet.yaml's ``deploy:`` section: how ``gpufleet render`` turns the fleet into objects.

Same conventions as ``gpufleet.config`` (frozen dataclasses validated by pydantic,
unknown keys rejected, units in names). Every field has a default, so a fleet
without a ``deploy:`` section renders as is. This module must not import
``gpufleet.config`` (which imports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

_STRICT = ConfigDict(extra="forbid")

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65535)]
Percent = Annotated[int, Field(ge=1, le=100)]
DnsLabel = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]
Image = Annotated[str, Field(min_length=1, pattern=r"^[^\s]+$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
WeightsUri = Annotated[str, Field(pattern=r"^(s3|https?)://[^\s]+$")]
AbsolutePath = Annotated[str, Field(pattern=r"^/[^\s]*$")]


@dataclass(frozen=True)
class EngineDeployConfig:
    """The vLLM pods of every (model, pool) deployment."""

    __pydantic_config__ = _STRICT

    image: Image = "vllm/vllm-openai:v0.11.0"
    port: Port = 8000
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    enable_prefix_caching: bool = True
    max_loras: PositiveInt = 4
    """``--max-loras`` upper bound (models with fewer adapters use their count)."""
    extra_args: tuple[str, ...] = ()
    """Appended to every engine's vLLM arguments."""
    shm_gib_per_gpu: PositiveFloat = 4.0
    """/dev/shm (memory-backed emptyDir) per GPU of a pod; NCCL uses it under TP."""
    cpu_per_gpu: PositiveFloat | None = None
    """CPU request per GPU; default: 3/4 of the node's vCPUs per GPU (instances.yaml)."""
    memory_gib_per_gpu: PositiveFloat | None = None
    """Memory request per GPU; default: 3/4 of the node's memory per GPU (instances.yaml)."""
    gpus_per_node: PositiveInt | None = None
    """Default: the largest instance of the GPU type in instances.yaml, else 8."""
    startup_base_s: PositiveFloat = 180.0
    """Start-up time besides loading weights (CUDA init, profiling, graph capture)."""
    weight_load_gb_per_s: PositiveFloat = 0.5
    """Pessimistic rate at which a pod reads its weights from the node-local cache."""
    startup_max_s: PositiveFloat = 3600.0
    """Cap of the start-up probe budget; also the budget for models not in the catalog."""
    drain_timeout_s: PositiveFloat = 90.0
    """How long the preStop hook waits for the replica's in-flight requests at the gateway."""
    hf_token_secret: DnsLabel | None = "gpufleet-hf-token"
    """Secret (key ``token``) exposed as HF_TOKEN, optional; never inlined."""
    service_account_role_arn: str | None = None
    """IAM role for the engines' service account (IRSA), e.g. to read weights from S3."""


@dataclass(frozen=True)
class ModelDeployConfig:
    """Where one model's weights come from (keyed by model name under ``deploy.models``)."""

    __pydantic_config__ = _STRICT

    weights_uri: WeightsUri | None = None
    """``s3://bucket/prefix/`` (synced) or ``https://.../weights.tar`` (unpacked) into the
    node-local cache; without it vLLM downloads ``hf_repo`` itself."""
    weights_sha256: Sha256 | None = None
    """sha256 of the sorted ``sha256sum`` listing of the fetched files; checked on download."""
    hf_repo: str | None = None
    """vLLM's ``--model`` when there is no ``weights_uri`` (default: the catalog's first
    Hugging Face id, else the model name)."""
    lora_sources: dict[str, str] = field(default_factory=dict)
    """Adapter name → path or Hugging Face repo (default: ``<weights>/loras/<name>`` when
    the weights are fetched, else the adapter name)."""


@dataclass(frozen=True)
class WeightsConfig:
    """The node-local weights cache shared by the engines of a node."""

    __pydantic_config__ = _STRICT

    cache_dir: AbsolutePath = "/var/lib/gpufleet/models"
    """hostPath on every GPU node; mounted at /models."""
    fetch_image: Image = "amazon/aws-cli:2.27.50"
    """Runs the fetch script (needs sh, find, sort, sha256sum; aws for s3://, curl and
    tar for https://)."""
    prewarm: bool = False
    """Render a DaemonSet per pool that fills every GPU node's cache ahead of scheduling."""


@dataclass(frozen=True)
class GatewayDeployConfig:
    __pydantic_config__ = _STRICT

    image: Image = "ghcr.io/gpufleet/gpufleet:0.1.0"
    replicas: Annotated[int, Field(ge=2)] = 2
    max_replicas: PositiveInt = 10
    cpu_target_percent: Percent = 70
    """HPA target: average CPU utilisation of the requests."""
    cpu_request_millicores: PositiveInt = 1000
    memory_request_mib: PositiveInt = 512
    memory_limit_mib: PositiveInt = 1024
    secret_name: DnsLabel | None = "gpufleet-gateway"
    """Secret whose keys become environment variables (``GPUFLEET__...``), optional."""


@dataclass(frozen=True)
class IngressConfig:
    __pydantic_config__ = _STRICT

    kind: Literal["alb", "istio", "none"] = "alb"
    """``alb``: Ingress for the AWS Load Balancer Controller; ``istio``: Gateway API
    HTTPRoute attached to an Istio gateway."""
    host: str | None = None
    alb_scheme: Literal["internet-facing", "internal"] = "internet-facing"
    alb_certificate_arn: str | None = None
    """With a certificate the ALB listens on 443 and redirects 80."""
    gateway_name: DnsLabel = "gateway"
    """The Gateway API ``Gateway`` the HTTPRoute attaches to (kind ``istio``)."""
    gateway_namespace: DnsLabel = "istio-ingress"


@dataclass(frozen=True)
class AutoscalingDeployConfig:
    """KEDA ScaledObjects per engine workload, driven by the gateway's queue metrics."""

    __pydantic_config__ = _STRICT

    enabled: bool = True
    max_replicas_factor: Annotated[float, Field(ge=1)] = 4.0
    """maxReplicaCount = ceil(replicas × this); minReplicaCount = replicas."""
    target_requests_per_replica: PositiveFloat = 16.0
    """Queued + in-flight requests per replica KEDA aims for."""
    prometheus_url: str = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    polling_interval_s: PositiveInt = 15
    cooldown_s: PositiveInt = 300
    scale_down_window_s: PositiveInt = 600


@dataclass(frozen=True)
class MonitoringDeployConfig:
    __pydantic_config__ = _STRICT

    enabled: bool = True
    """ServiceMonitor (gateway) and PodMonitor (engines) for the Prometheus Operator."""
    labels: dict[str, str] = field(default_factory=lambda: {"release": "kube-prometheus-stack"})
    """Labels the Prometheus Operator selects monitors by."""
    scrape_interval_s: PositiveInt = 15
    dashboard_configmap: bool = True
    """The Grafana dashboard as a ConfigMap labelled for Grafana's sidecar."""


@dataclass(frozen=True)
class AwsDeployConfig:
    """EKS node groups (``--target terraform``)."""

    __pydantic_config__ = _STRICT

    region: str = "us-east-1"
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.\d+$")] = "1.34"
    ami_type: str = "AL2023_x86_64_NVIDIA"
    root_volume_gib: PositiveInt | None = None
    """Default: room for the weights of the pool's models twice over, plus 200 GiB."""
    gpu_time_slicing_replicas: PositiveInt = 1
    """>1 shares each GPU between that many pods (GPU Operator time-slicing)."""


@dataclass(frozen=True)
class DeployConfig:
    __pydantic_config__ = _STRICT

    namespace: DnsLabel = "gpufleet"
    engine: EngineDeployConfig = EngineDeployConfig()
    models: dict[str, ModelDeployConfig] = field(default_factory=dict)
    weights: WeightsConfig = WeightsConfig()
    gateway: GatewayDeployConfig = GatewayDeployConfig()
    ingress: IngressConfig = IngressConfig()
    autoscaling: AutoscalingDeployConfig = AutoscalingDeployConfig()
    monitoring: MonitoringDeployConfig = MonitoringDeployConfig()
    aws: AwsDeployConfig = AwsDeployConfig()
