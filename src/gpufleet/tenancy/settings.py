"""fleet.yaml's ``tenancy:`` section: tenants, API keys (hashed), quota store.

Same conventions as ``gpufleet.config`` (frozen dataclasses validated by pydantic,
unknown keys rejected, units in names). This module must not import
``gpufleet.config`` (which imports it).

Keys are configured by hash only (``sha256:<64 hex>``, printed by
``python -m gpufleet.tenancy.hash_key``); the raw key never appears in config.
With no keys configured and ``store: memory`` the gateway is open (local use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

_STRICT = ConfigDict(extra="forbid")

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Name = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
]
KeyHash = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
RedisUrl = Annotated[str, Field(pattern=r"^rediss?://[^\s]+$")]


@dataclass(frozen=True)
class TenantConfig:
    """One tenant's policy. ``None`` limits are unlimited; empty ``models`` allows all."""

    __pydantic_config__ = _STRICT

    name: Name
    models: tuple[Name, ...] = ()
    """Canonical model names (or aliases/adapters) the tenant may call; empty: all."""
    priority: int | None = None
    """Priority band of the tenant's requests; ``x-priority`` may only lower it."""
    requests_per_minute: PositiveInt | None = None
    tokens_per_minute: PositiveInt | None = None
    """Prompt + generated tokens, charged when a request completes."""
    max_concurrent: PositiveInt | None = None
    token_budget: PositiveInt | None = None
    """Prompt + generated tokens per ``budget_period_s`` (fixed windows from the epoch)."""
    budget_period_s: PositiveFloat = 86400.0


@dataclass(frozen=True)
class ApiKeyConfig:
    __pydantic_config__ = _STRICT

    hash: KeyHash
    tenant: Name
    label: str = ""
    """A human note (owner, creation date) to tell keys apart when rotating; never the key."""


@dataclass(frozen=True)
class ModelPrice:
    __pydantic_config__ = _STRICT

    prompt_usd_per_mtok: NonNegativeFloat = 0.0
    generation_usd_per_mtok: NonNegativeFloat = 0.0


@dataclass(frozen=True)
class RedisConfig:
    """The shared store for keys, rate-limit and budget counters across gateway replicas."""

    __pydantic_config__ = _STRICT

    url: RedisUrl = "redis://127.0.0.1:6379/0"
    prefix: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9:._-]*$")] = "gpufleet:"
    socket_timeout_s: PositiveFloat = 0.05
    connect_timeout_s: PositiveFloat = 0.05
    fail_mode: Literal["open", "closed"] = "closed"
    """Redis unreachable: ``closed`` answers 503; ``open`` admits with this replica's
    in-process limits (so a tenant's limit is multiplied by the replica count)."""
    breaker_failures: PositiveInt = 3
    """Consecutive failures that open the circuit breaker (Redis is then skipped)."""
    breaker_cooldown_s: PositiveFloat = 1.0
    """How long the breaker stays open before one probe request tries Redis again."""
    key_refresh_s: PositiveFloat = 5.0
    """Interval of re-reading the key hashes kept in Redis (revocation delay)."""


@dataclass(frozen=True)
class TenancyConfig:
    __pydantic_config__ = _STRICT

    store: Literal["memory", "redis"] = "memory"
    tenants: tuple[TenantConfig, ...] = ()
    keys: tuple[ApiKeyConfig, ...] = ()
    admin_key_hash: KeyHash | None = None
    """Hash of the key for ``/admin/*`` while keys are on (absent: admin routes refuse)."""
    redis: RedisConfig = RedisConfig()
    prices: dict[str, ModelPrice] = field(default_factory=dict)
    """Canonical model name → price, for the per-tenant cost in usage."""

    @property
    def enabled(self) -> bool:
        """Keys are on: configured in the file/env, or kept in Redis."""
        return bool(self.keys) or self.store == "redis"

    def __post_init__(self) -> None:
        names = [t.name for t in self.tenants]
        if len(set(names)) != len(names):
            raise ValueError("tenants: duplicate tenant name")
        for key in self.keys:
            if key.tenant not in names:
                raise ValueError(f"keys: unknown tenant {key.tenant!r} (define it in tenants)")
        if len({k.hash for k in self.keys}) != len(self.keys):
            raise ValueError("keys: a key hash is listed twice")
