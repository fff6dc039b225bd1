"""fleet.yaml: one validated description of the fleet.

The schema *is* the frozen dataclasses below; pydantic validates them at the
edge (``load_config``), rejecting unknown keys and bad values with the key path
and a one-line reason. Environment variables override file values:
``GPUFLEET__GATEWAY__PORT=9000`` sets ``gateway.port``; list items are
addressed by index (``GPUFLEET__POOLS__0__PRICE_USD_PER_GPU_HOUR=2.5``); values
are parsed as YAML scalars.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from gpufleet.deploy.settings import DeployConfig
from gpufleet.errors import ConfigError
from gpufleet.tenancy.settings import TenancyConfig

ENV_PREFIX = "GPUFLEET__"
_STRICT = ConfigDict(extra="forbid")

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Name = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
]
Url = Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]


@dataclass(frozen=True)
class GatewayConfig:
    __pydantic_config__ = _STRICT

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    max_body_bytes: PositiveInt = 4 * 1024 * 1024
    access_log: str = "-"
    """'-' for stdout, 'off', or a file path. JSON lines, never prompt text."""
    debug_header: bool = False
    """Honour ``x-gpufleet-debug: 1`` by returning the routing decision in headers."""
    admin_enabled: bool = True
    shutdown_grace_s: NonNegativeFloat = 10.0
    max_connections_per_client: NonNegativeInt = 0
    """Open connections allowed per client IP address; more are answered 429 and closed.
    0 (the default) is no cap: behind a load balancer every client has its address."""


@dataclass(frozen=True)
class ModelConfig:
    __pydantic_config__ = _STRICT

    name: Name
    aliases: tuple[Name, ...] = ()
    context_length: PositiveInt = 8192
    lora_adapters: tuple[Name, ...] = ()
    spec: str | None = None
    """Catalog id of the model's architecture (engine model, planner); defaults to ``name``."""


@dataclass(frozen=True)
class DiscoveryConfig:
    __pydantic_config__ = _STRICT

    kind: Literal["kubernetes"]
    namespace: str = "default"
    selector: dict[str, str] = field(default_factory=dict)
    port: Annotated[int, Field(ge=1, le=65535)] = 8000


@dataclass(frozen=True)
class DeploymentConfig:
    """Replicas of one model in one pool. Without ``endpoints`` they are started
    locally as simulated engines by ``gpufleet up``."""

    __pydantic_config__ = _STRICT

    model: Name
    replicas: NonNegativeInt = 1
    endpoints: tuple[Url, ...] = ()
    min_replicas: NonNegativeInt = 0
    """Autoscaling floor of this deployment (``autoscale:``; ignored when it is off)."""
    max_replicas: NonNegativeInt | None = None
    """Autoscaling ceiling of this deployment (None: unbounded but for the budget)."""


@dataclass(frozen=True)
class PoolConfig:
    __pydantic_config__ = _STRICT

    name: Name
    gpu: Name
    gpus_per_replica: PositiveInt = 1
    capacity: Literal["on-demand", "spot"] = "on-demand"
    price_usd_per_gpu_hour: NonNegativeFloat = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    deployments: tuple[DeploymentConfig, ...] = ()
    discovery: DiscoveryConfig | None = None


@dataclass(frozen=True)
class PluginConfig:
    __pydantic_config__ = _STRICT

    name: Name
    weight: NonNegativeFloat = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileConfig:
    __pydantic_config__ = _STRICT

    filters: tuple[PluginConfig, ...] = (
        PluginConfig("healthy-filter"),
        PluginConfig("model-filter"),
    )
    scorers: tuple[PluginConfig, ...] = (PluginConfig("least-outstanding-scorer"),)
    picker: PluginConfig = PluginConfig("max-score-picker")


def _plugins(
    *names: str | tuple[str, float] | tuple[str, float, dict[str, Any]],
) -> tuple[PluginConfig, ...]:
    out = []
    for entry in names:
        if isinstance(entry, str):
            out.append(PluginConfig(entry))
        elif len(entry) == 2:
            out.append(PluginConfig(entry[0], entry[1]))
        else:
            out.append(PluginConfig(entry[0], entry[1], entry[2]))
    return tuple(out)


BUILTIN_PROFILES: dict[str, ProfileConfig] = {
    # Cache-, load- and KV-aware (weights tuned with `make bench-routing`, see docs/routing.md).
    "default": ProfileConfig(
        filters=_plugins(
            "healthy-filter",
            "model-filter",
            # batch (band 0) keeps 1 request in flight per replica while interactive
            # ones are in flight: interactive TTFT p90 within 2x of unloaded under a flood
            ("saturation-filter", 1.0, {"low_max_in_flight": 1}),
        ),
        scorers=_plugins(
            ("prefix-affinity-scorer", 3.0),
            ("least-load-scorer", 2.0),
            ("kv-cache-utilization-scorer", 1.0),
            ("lora-affinity-scorer", 1.0),
        ),
    ),
    # Cheapest capacity that still meets the request's TTFT target, then load.
    "cost-first": ProfileConfig(
        filters=_plugins("healthy-filter", "model-filter", "saturation-filter"),
        scorers=_plugins(
            ("cost-scorer", 3.0),
            ("slo-headroom-scorer", 3.0),
            ("prefix-affinity-scorer", 1.0),
            ("least-load-scorer", 1.0),
        ),
    ),
    "round-robin": ProfileConfig(scorers=_plugins("round-robin-scorer")),
    "least-load": ProfileConfig(scorers=_plugins("least-load-scorer")),
    "least-outstanding": ProfileConfig(scorers=_plugins("least-outstanding-scorer")),
    "session-affinity": ProfileConfig(
        scorers=_plugins(("session-affinity-scorer", 2.0), "least-outstanding-scorer")
    ),
}


@dataclass(frozen=True)
class RoutingConfig:
    """``profile`` names one of ``profiles`` or a built-in (``BUILTIN_PROFILES``):
    default, cost-first, round-robin, least-load, least-outstanding, session-affinity."""

    __pydantic_config__ = _STRICT

    profile: Name = "default"
    profiles: dict[str, ProfileConfig] = field(default_factory=dict)

    def active_profile(self) -> ProfileConfig:
        return {**BUILTIN_PROFILES, **self.profiles}[self.profile]


@dataclass(frozen=True)
class TimeoutConfig:
    __pydantic_config__ = _STRICT

    connect_s: PositiveFloat = 2.0
    first_byte_s: PositiveFloat = 120.0
    idle_s: PositiveFloat = 60.0
    """Longest silence between two chunks of a streamed response."""
    total_s: PositiveFloat = 900.0


@dataclass(frozen=True)
class RetryConfig:
    __pydantic_config__ = _STRICT

    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    budget_ratio: Annotated[float, Field(ge=0, le=1)] = 0.2
    """Retries allowed as a fraction of requests over ``budget_window_s`` ..."""
    min_retries_per_s: NonNegativeFloat = 10.0
    """... plus this floor, so a quiet gateway can still retry."""
    budget_window_s: PositiveFloat = 10.0
    resume_streams: bool = True
    """Continue a stream cut mid-way (replica died or was stopped) on another replica:
    the client sees one uninterrupted stream (see gateway/resumption.py)."""
    max_resumes: Annotated[int, Field(ge=0, le=10)] = 2
    """Resumptions at most per stream; each also spends the retry budget."""


@dataclass(frozen=True)
class ResponseCacheConfig:
    """Exact-match cache of deterministic answers (see gateway/response_cache.py)."""

    __pydantic_config__ = _STRICT

    enabled: bool = False
    store: Literal["memory", "redis"] = "memory"
    ttl_s: PositiveFloat = 300.0
    max_entries: PositiveInt = 10_000
    """In-process store: entries kept (least recently used dropped first)."""
    max_response_bytes: PositiveInt = 1_048_576
    """Larger answers are not stored."""
    redis_url: str | None = None
    """Redis store: defaults to ``tenancy.redis.url``."""
    prefix: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9:._-]*$")] = "gpufleet:rc:"
    timeout_s: PositiveFloat = 0.05


@dataclass(frozen=True)
class HealthConfig:
    __pydantic_config__ = _STRICT

    interval_s: PositiveFloat = 2.0
    jitter: Annotated[float, Field(ge=0, lt=1)] = 0.2
    timeout_s: PositiveFloat = 1.0
    eject_after_failures: PositiveInt = 3
    eject_base_s: PositiveFloat = 5.0
    eject_max_s: PositiveFloat = 60.0


@dataclass(frozen=True)
class ScrapeConfig:
    """Polling of each replica's ``/metrics`` (engine load signals for routing)."""

    __pydantic_config__ = _STRICT

    enabled: bool = True
    interval_s: PositiveFloat = 0.1
    jitter: Annotated[float, Field(ge=0, lt=1)] = 0.2
    timeout_s: PositiveFloat = 0.5


@dataclass(frozen=True)
class RequestClassConfig:
    """A latency class: its priority band, deadline in the admission queue, TTFT target."""

    __pydantic_config__ = _STRICT

    priority: int = 0
    deadline_s: PositiveFloat = 30.0
    ttft_target_s: NonNegativeFloat = 0.0


@dataclass(frozen=True)
class AdmissionConfig:
    """The gateway-side queue used when every candidate replica is saturated or none is
    ready. Requests name their class with ``x-request-class`` (default ``default_class``),
    may raise or lower their band with ``x-priority`` (an integer) and shorten their
    deadline with ``x-request-deadline-ms``."""

    __pydantic_config__ = _STRICT

    enabled: bool = True
    max_queue_len: PositiveInt = 4096
    max_wait_s: PositiveFloat = 60.0
    ordering: Literal["fcfs", "edf"] = "fcfs"
    default_class: Name = "standard"
    classes: dict[str, RequestClassConfig] = field(
        default_factory=lambda: {
            "interactive": RequestClassConfig(priority=10, deadline_s=10.0, ttft_target_s=1.0),
            "standard": RequestClassConfig(priority=5, deadline_s=30.0, ttft_target_s=2.0),
            "batch": RequestClassConfig(priority=0, deadline_s=600.0),
        }
    )
    tenant_weights: dict[str, PositiveFloat] = field(default_factory=dict)
    """Share of each tenant within a priority band (token-weighted); absent tenants weigh 1."""
    tenant_header: str = "x-tenant"
    """Header naming the tenant when API keys are off (keys bind requests to tenants)."""


@dataclass(frozen=True)
class AutoscaleModelConfig:
    """Per-model overrides of the ``autoscale:`` section (keyed by canonical model name)."""

    __pydantic_config__ = _STRICT

    ttft_s: PositiveFloat | None = None
    itl_s: PositiveFloat | None = None
    prompt_tokens: PositiveInt | None = None
    output_tokens: PositiveInt | None = None
    capacity_requests_per_s: PositiveFloat | None = None
    """Requests/s one replica sustains at the SLO, in every pool (default: the planner's
    estimate per pool from the catalog, else ``target_in_flight_per_replica``)."""
    idle_to_zero_s: PositiveFloat | None = None


@dataclass(frozen=True)
class AutoscaleConfig:
    """The SLO autoscaler (``gpufleet.autoscale``; docs/autoscale.md). Off by default.

    Replicas per deployment stay within its ``min_replicas``/``max_replicas``."""

    __pydantic_config__ = _STRICT

    enabled: bool = False
    interval_s: PositiveFloat = 15.0
    """Seconds between two decisions."""
    ttft_s: PositiveFloat = 2.0
    """TTFT target (capacity is sized so that queues stay short of it)."""
    itl_s: PositiveFloat = 0.1
    """Inter-token latency target (caps the batch a replica runs at)."""
    prompt_tokens: PositiveInt = 512
    """Typical prompt length, for the per-replica capacity estimate."""
    output_tokens: PositiveInt = 256
    """Typical output length, for the per-replica capacity estimate."""
    target_utilization: Annotated[float, Field(gt=0, le=1)] = 0.8
    """Fraction of the SLO capacity a replica is planned to run at (burst headroom)."""
    target_in_flight_per_replica: PositiveFloat = 32.0
    """Concurrency per replica when no capacity figure is known for a deployment."""
    cold_start_s: PositiveFloat = 180.0
    """Provisioning + weights + engine init: how far ahead load is forecast."""
    scale_down_delay_s: NonNegativeFloat = 300.0
    """Scale down to the highest need seen over this window (hysteresis)."""
    cooldown_s: NonNegativeFloat = 120.0
    """No scale-down of a model for this long after it scaled up."""
    queue_drain_s: PositiveFloat = 30.0
    """Requests queued at the gateway are planned to be drained within this time."""
    idle_to_zero_s: PositiveFloat | None = 900.0
    """A model with no request for this long scales to zero (None: keep one replica)."""
    budget_usd_per_hour: PositiveFloat | None = None
    """Cap on the whole fleet's desired replicas in $/h (None: no cap)."""
    max_spot_fraction: Annotated[float, Field(ge=0, le=1)] = 1.0
    """Most of a model's planned capacity that may sit on spot."""
    spot_notices_to_fallback: PositiveInt = 2
    """This many spot notices in a pool within ``spot_backoff_s`` mark it unhealthy ..."""
    spot_backoff_s: PositiveFloat = 900.0
    """... and new capacity goes on-demand for this long after the last notice."""
    models: dict[str, AutoscaleModelConfig] = field(default_factory=dict)


@dataclass(frozen=True)
class FleetConfig:
    __pydantic_config__ = _STRICT

    models: tuple[ModelConfig, ...]
    pools: tuple[PoolConfig, ...]
    gateway: GatewayConfig = GatewayConfig()
    routing: RoutingConfig = RoutingConfig()
    timeouts: TimeoutConfig = TimeoutConfig()
    retry: RetryConfig = RetryConfig()
    health: HealthConfig = HealthConfig()
    scrape: ScrapeConfig = ScrapeConfig()
    admission: AdmissionConfig = AdmissionConfig()
    deploy: DeployConfig = DeployConfig()  # noqa: RUF009 (frozen, like the others)
    tenancy: TenancyConfig = TenancyConfig()  # noqa: RUF009
    response_cache: ResponseCacheConfig = ResponseCacheConfig()
    autoscale: AutoscaleConfig = AutoscaleConfig()

    def model_names(self) -> dict[str, str]:
        """Every served name (canonical and alias) → canonical model name."""
        names: dict[str, str] = {}
        for model in self.models:
            names[model.name] = model.name
            for alias in model.aliases:
                names[alias] = model.name
        return names

    def model(self, name: str) -> ModelConfig:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)


_ADAPTER: TypeAdapter[FleetConfig] = TypeAdapter(FleetConfig)


def parse_config(data: Any, *, source: str = "fleet.yaml") -> FleetConfig:
    """Validate a mapping into a ``FleetConfig`` or raise ``ConfigError``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    try:
        config = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    _check_references(config, source)
    return config


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> FleetConfig:
    """Read ``path`` (YAML), apply ``GPUFLEET__*`` overrides from ``env``, validate."""
    source = str(path) if path else "fleet.yaml"
    data: Any = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {_first_line(str(exc))}") from None
    data = apply_env_overrides(data, os.environ if env is None else env)
    return parse_config(data, source=source)


def apply_env_overrides(data: Any, env: Mapping[str, str]) -> Any:
    """Return ``data`` with every ``GPUFLEET__A__B=value`` applied at path a.b."""
    for key in sorted(env):
        if not key.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in key[len(ENV_PREFIX) :].split("__") if part]
        if path:
            data = _set_path(data, path, yaml.safe_load(env[key]), key)
    return data


def _set_path(node: Any, path: list[str], value: Any, env_key: str) -> Any:
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        if not head.isdigit() or int(head) >= len(node):
            raise ConfigError(f"{env_key}: no list item {head!r} to override")
        items = list(node)
        items[int(head)] = _set_path(items[int(head)], rest, value, env_key) if rest else value
        return items
    mapping: dict[str, Any] = dict(node) if isinstance(node, Mapping) else {}
    mapping[head] = _set_path(mapping.get(head, {}), rest, value, env_key) if rest else value
    return mapping


def _check_references(config: FleetConfig, source: str) -> None:
    names = config.model_names()
    seen_models: set[str] = set()
    for i, model in enumerate(config.models):
        if model.name in seen_models:
            raise ConfigError(f"{source}: models[{i}].name: duplicate model {model.name!r}")
        seen_models.add(model.name)
    if len(names) != sum(1 + len(m.aliases) for m in config.models):
        raise ConfigError(f"{source}: models: an alias repeats a model name or another alias")
    pool_names: set[str] = set()
    for i, pool in enumerate(config.pools):
        if pool.name in pool_names:
            raise ConfigError(f"{source}: pools[{i}].name: duplicate pool {pool.name!r}")
        pool_names.add(pool.name)
        for j, deployment in enumerate(pool.deployments):
            if deployment.model not in seen_models:
                raise ConfigError(
                    f"{source}: pools[{i}].deployments[{j}].model: unknown model "
                    f"{deployment.model!r} (known: {', '.join(sorted(seen_models))})"
                )
            ceiling = deployment.max_replicas
            if ceiling is not None and ceiling < deployment.min_replicas:
                raise ConfigError(
                    f"{source}: pools[{i}].deployments[{j}].max_replicas: "
                    f"{deployment.max_replicas} is below min_replicas {deployment.min_replicas}"
                )
    for model_name in config.autoscale.models:
        if model_name not in seen_models:
            raise ConfigError(
                f"{source}: autoscale.models.{model_name}: unknown model {model_name!r} "
                f"(known: {', '.join(sorted(seen_models))})"
            )
    admission = config.admission
    if admission.default_class not in admission.classes:
        raise ConfigError(
            f"{source}: admission.default_class: no class named {admission.default_class!r} "
            f"(defined: {', '.join(sorted(admission.classes))})"
        )
    known = {**BUILTIN_PROFILES, **config.routing.profiles}
    if config.routing.profile not in known:
        raise ConfigError(
            f"{source}: routing.profile: no profile named {config.routing.profile!r} "
            f"(defined: {', '.join(sorted(known))})"
        )


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        path = _format_loc(error["loc"])
        unknown = error["type"] in ("extra_forbidden", "unexpected_keyword_argument")
        reason = "unknown key" if unknown else error["msg"]
        lines.append(f"{source}: {path}: {reason}")
    return "\n".join(lines)


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
