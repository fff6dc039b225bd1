"""The embedded quota store: one ``TenantLimiter`` per tenant, in this process.

Pure (time passed in). Limits hold per gateway process; use the Redis store for
limits shared across replicas.
"""

from __future__ import annotations

from collections.abc import Iterable

from gpufleet.tenancy.keys import Tenant
from gpufleet.tenancy.quota import Refusal, TenantLimiter


class MemoryStore:
    __slots__ = ("_limiters",)

    def __init__(self, tenants: Iterable[Tenant]):
        self._limiters = {t.name: TenantLimiter(t) for t in tenants}

    def admit(self, tenant: Tenant, now_s: float) -> Refusal | None:
        """``None`` when admitted (a slot is taken: call ``settle`` once), else why not."""
        return self._limiters[tenant.name].admit(now_s)

    def settle(self, tenant: Tenant, num_tokens: int, now_s: float) -> None:
        self._limiters[tenant.name].settle(num_tokens, now_s)

    def in_flight(self, tenant: Tenant) -> int:
        return self._limiters[tenant.name].in_flight
