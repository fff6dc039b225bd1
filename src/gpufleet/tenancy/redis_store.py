"""The shared quota store on Redis (redis-py's asyncio client).

One ``EVALSHA`` round trip admits a request (``redis_scripts.ADMIT``); settling
(tokens, slot release, usage) is a second script sent in the background, off the
response's path. Every call has short socket timeouts and no client-side retries;
failures surface as ``StoreUnavailable`` (the caller's breaker and fail mode
decide what happens). Key hashes live in the hash ``{prefix}keys`` (field: the
``sha256:<hex>`` hash, value: tenant name).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from gpufleet.errors import GpufleetError
from gpufleet.tenancy.keys import Tenant
from gpufleet.tenancy.quota import Limit, Refusal
from gpufleet.tenancy.redis_scripts import ADMIT, SETTLE
from gpufleet.tenancy.settings import RedisConfig
from gpufleet.tenancy.usage import UsageTotals

_LIMITS = {1: Limit.REQUESTS, 2: Limit.TOKENS, 3: Limit.BUDGET, 4: Limit.CONCURRENCY}
_FAILURES = (RedisError, OSError, TimeoutError)


class StoreUnavailable(GpufleetError):
    """The shared store did not answer (refused, reset, timed out, or errored)."""


class RedisStore:
    def __init__(self, config: RedisConfig):
        self.config = config
        self._client = aioredis.Redis.from_url(
            config.url,
            socket_timeout=config.socket_timeout_s,
            socket_connect_timeout=config.connect_timeout_s,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._admit = self._client.register_script(ADMIT)
        self._settle = self._client.register_script(SETTLE)
        self._deadline_s = config.socket_timeout_s + config.connect_timeout_s
        self._pending: set[asyncio.Task[Any]] = set()

    def _keys(self, tenant: str, *names: str) -> list[str]:
        base = f"{self.config.prefix}t:{{{tenant}}}:"
        return [base + name for name in names]

    async def admit(self, tenant: Tenant) -> Refusal | None:
        """``None`` when admitted (a slot is taken when concurrency is limited)."""
        args = [
            tenant.requests_per_minute or 0,
            tenant.tokens_per_minute or 0,
            tenant.token_budget or 0,
            tenant.budget_period_s,
            tenant.max_concurrent or 0,
        ]
        keys = self._keys(tenant.name, "rpm", "tpm", "budget", "inflight")
        reply = await self._call(self._admit(keys=keys, args=args))
        code, retry_ms = int(reply[0]), int(reply[1])
        return None if code == 0 else Refusal(_LIMITS[code], retry_ms / 1000)

    def settle(
        self,
        tenant: Tenant,
        prompt_tokens: int,
        generation_tokens: int,
        cost_usd: float,
        release: bool,
    ) -> asyncio.Task[Any]:
        """Charge tokens, free the slot (``release``) and add usage, in the background.

        The returned task fails with ``StoreUnavailable``; the caller must observe it."""
        args = [
            prompt_tokens + generation_tokens,
            tenant.tokens_per_minute or 0,
            tenant.token_budget or 0,
            tenant.budget_period_s,
            1 if release else 0,
            prompt_tokens,
            generation_tokens,
            repr(cost_usd),
        ]
        keys = self._keys(tenant.name, "tpm", "budget", "inflight", "usage")
        task = asyncio.get_running_loop().create_task(
            self._call(self._settle(keys=keys, args=args))
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def key_hashes(self) -> list[tuple[str, str]]:
        """(hash, tenant) pairs kept in Redis."""
        raw = await self._call(self._client.hgetall(self.config.prefix + "keys"))
        return [(_text(h), _text(t)) for h, t in raw.items()]

    async def usage(self, tenants: Iterable[str]) -> dict[str, UsageTotals]:
        names = list(tenants)
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self._keys(name, "usage")[0])
        replies = await self._call(pipe.execute())
        out = {}
        for name, raw in zip(names, replies, strict=True):
            fields = {_text(k): _text(v) for k, v in raw.items()}
            out[name] = UsageTotals(
                int(fields.get("requests", 0)),
                int(fields.get("prompt_tokens", 0)),
                int(fields.get("generation_tokens", 0)),
                float(fields.get("cost_usd", 0.0)),
            )
        return out

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(self._deadline_s):
                return await awaitable
        except _FAILURES as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None

    async def close(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=self._deadline_s * 4)
        await self._client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
