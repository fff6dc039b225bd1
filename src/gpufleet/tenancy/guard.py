"""The gateway's one entry point to tenancy: authenticate, admit, settle, report usage.

Contract for the request path (``gateway.proxy``)::

    tenant = guard.authenticate(headers)             # 401, sync, a few µs
    lease = await guard.admit(tenant, requested, model)  # 403 / 429 / 503
    ...                                              # serve the request
    guard.settle(lease, model, prompt, generated)    # exactly once, never raises

Store failures (Redis) go through a circuit breaker: while it is open the store is
skipped and ``redis.fail_mode`` applies — ``closed``: 503 + Retry-After; ``open``:
admit with this process's in-process limits. Each failure counts in
``gpufleet_quota_store_errors``; breaker transitions are logged (never keys).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from gpufleet.errors import AuthenticationError, NoCapacity, PermissionDenied, RateLimited
from gpufleet.metrics import TenancyMetrics
from gpufleet.tenancy.breaker import CircuitBreaker
from gpufleet.tenancy.keys import KeyRing, Tenant, entries_for, matches
from gpufleet.tenancy.memory_store import MemoryStore
from gpufleet.tenancy.quota import Limit, Refusal
from gpufleet.tenancy.redis_store import RedisStore, StoreUnavailable
from gpufleet.tenancy.settings import TenancyConfig, TenantConfig
from gpufleet.tenancy.usage import UsageTotals, cost_usd

log = logging.getLogger("gpufleet.tenancy")
_MESSAGES = {
    Limit.REQUESTS: "Rate limit reached for requests per minute",
    Limit.TOKENS: "Rate limit reached for tokens per minute",
    Limit.CONCURRENCY: "Too many concurrent requests",
    Limit.BUDGET: "You exceeded your token budget for the current period",
}


@dataclass(frozen=True, slots=True)
class Lease:
    """An admitted request. ``shared``: its slot is held in Redis (else in-process)."""

    tenant: Tenant
    shared: bool


def tenant_from_config(config: TenantConfig) -> Tenant:
    return Tenant(
        name=config.name,
        models=frozenset(config.models),
        priority=config.priority,
        requests_per_minute=config.requests_per_minute,
        tokens_per_minute=config.tokens_per_minute,
        max_concurrent=config.max_concurrent,
        token_budget=config.token_budget,
        budget_period_s=config.budget_period_s,
    )


class TenancyGuard:
    def __init__(self, config: TenancyConfig, registry: CollectorRegistry):
        self.config = config
        self.metrics = TenancyMetrics(registry)
        self.tenants = {t.name: tenant_from_config(t) for t in config.tenants}
        self._file_keys = [(k.hash, k.tenant) for k in config.keys]
        self.keys = KeyRing(entries_for(self._file_keys, self.tenants))
        self.local = MemoryStore(self.tenants.values())
        self.ledger: dict[str, UsageTotals] = {name: UsageTotals() for name in self.tenants}
        self.redis: RedisStore | None = None
        r = config.redis
        self.breaker = CircuitBreaker(r.breaker_failures, r.breaker_cooldown_s)
        if config.store == "redis":
            self.redis = RedisStore(r)
        self._refresher: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Load the key hashes kept in Redis, then keep re-reading them."""
        if self.redis is not None:
            await self._refresh_keys()
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            # gather, not suppress(CancelledError): a cancel of close() itself still counts
            await asyncio.gather(self._refresher, return_exceptions=True)
        if self.redis is not None:
            await self.redis.close()

    # -- request path ------------------------------------------------------------------
    def authenticate(self, headers: Mapping[str, str]) -> Tenant:
        try:
            return self.keys.authenticate(headers.get("authorization"))
        except AuthenticationError:
            self.metrics.auth_failures.inc()
            raise

    def check_admin(self, headers: Mapping[str, str]) -> None:
        """Raise 401 unless the request carries the admin key."""
        if not matches(headers.get("authorization"), self.config.admin_key_hash):
            self.metrics.auth_failures.inc()
            raise AuthenticationError("Incorrect admin API key provided.")

    async def admit(self, tenant: Tenant, requested: str, model: str) -> Lease:
        if not (tenant.allows(model) or tenant.allows(requested)):
            self.metrics.tenant(tenant.name).rejected("model_not_allowed").inc()
            raise PermissionDenied(
                f"This API key may not use the model `{requested}`.",
                param="model",
                code="model_not_allowed",
            )
        shared = self.redis is not None
        refusal = await self._admit_shared(tenant) if shared else self._admit_local(tenant)
        if refusal is _LOCAL:
            shared, refusal = False, self._admit_local(tenant)
        if refusal is not None:
            assert isinstance(refusal, Refusal)
            self._refuse(tenant, refusal)
        return Lease(tenant, shared)

    def settle(self, lease: Lease, model: str, prompt_tokens: int, generated: int) -> None:
        """Account the request's usage and free its slot. Never raises, never blocks."""
        tenant = lease.tenant
        cost = cost_usd(self.config.prices, model, prompt_tokens, generated)
        self.ledger[tenant.name].add(prompt_tokens, generated, cost)
        self.metrics.tenant(tenant.name).add(prompt_tokens, generated, cost)
        now = time.time()
        if not lease.shared:
            self.local.settle(tenant, prompt_tokens + generated, now)
        if self.redis is not None and (lease.shared or self.breaker.allow(time.monotonic())):
            task = self.redis.settle(tenant, prompt_tokens, generated, cost, lease.shared)
            task.add_done_callback(self._settled)

    async def usage(self) -> dict[str, Any]:
        """Usage per tenant: fleet-wide from Redis, else (or when it is down) this process's."""
        if self.redis is not None and self.breaker.allow(time.monotonic()):
            try:
                totals = await self.redis.usage(self.tenants)
            except StoreUnavailable as exc:
                self._store_failed(exc)
            else:
                self._store_ok()
                return _usage_doc("fleet", totals)
        return _usage_doc("process", self.ledger)

    # -- internals -------------------------------------------------------------------
    async def _admit_shared(self, tenant: Tenant) -> Refusal | object | None:
        assert self.redis is not None
        if not self.breaker.allow(time.monotonic()):
            return self._degraded(tenant)
        try:
            refusal = await self.redis.admit(tenant)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return self._degraded(tenant)
        self._store_ok()
        return refusal

    def _degraded(self, tenant: Tenant) -> object:
        if self.config.redis.fail_mode == "open":
            return _LOCAL
        self.metrics.tenant(tenant.name).rejected(Limit.STORE.value).inc()
        raise NoCapacity(
            "The quota store is unavailable; retry later.",
            retry_after_s=self.config.redis.breaker_cooldown_s,
        )

    def _admit_local(self, tenant: Tenant) -> Refusal | None:
        return self.local.admit(tenant, time.time())

    def _refuse(self, tenant: Tenant, refusal: Refusal) -> None:
        self.metrics.tenant(tenant.name).rejected(refusal.limit.value).inc()
        error = RateLimited(
            f"{_MESSAGES[refusal.limit]} for tenant {tenant.name}; "
            f"retry after {refusal.retry_after_s:.1f} s.",
            retry_after_s=refusal.retry_after_s,
        )
        if refusal.limit is Limit.BUDGET:
            error.code = "insufficient_quota"
        raise error

    def _settled(self, task: asyncio.Task[Any]) -> None:
        exc = None if task.cancelled() else task.exception()
        if isinstance(exc, StoreUnavailable):
            self._store_failed(exc)
        elif exc is None:
            self._store_ok()

    def _store_failed(self, exc: Exception) -> None:
        self.metrics.quota_store_errors.inc()
        if self.breaker.record_failure(time.monotonic()):
            self.metrics.quota_store_degraded.set(1)
            log.warning(
                "quota store unavailable (%s): circuit open for %.1f s, fail mode %s",
                exc,
                self.config.redis.breaker_cooldown_s,
                self.config.redis.fail_mode,
            )

    def _store_ok(self) -> None:
        if self.breaker.record_success():
            self.metrics.quota_store_degraded.set(0)
            log.warning("quota store reachable again: circuit closed")

    async def _refresh_keys(self) -> None:
        assert self.redis is not None
        try:
            pairs = await self.redis.key_hashes()
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return
        self.keys.replace(entries_for([*self._file_keys, *pairs], self.tenants))

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.redis.key_refresh_s)
            if self.breaker.allow(time.monotonic()):
                await self._refresh_keys()


_LOCAL = object()
"""Marker: the shared store is down and fail mode is open — use in-process limits."""


def _usage_doc(scope: str, totals: Mapping[str, UsageTotals]) -> dict[str, Any]:
    return {"scope": scope, "tenants": {name: t.as_dict() for name, t in totals.items()}}
