"""The optional response cache: exact-match answers to deterministic requests.

Off by default (``response_cache.enabled``). A request is cacheable when its
answer is determined by its body: greedy sampling (``temperature: 0``) or a
fixed ``seed``, and no tools. The key is a SHA-256 of the tenant, the endpoint
kind, the canonical model and the request body in canonical form (sorted keys,
without ``stream``, ``stream_options`` and ``user``), so a streamed and a whole
request share one entry, and tenants never see each other's answers.

Entries hold the whole (non-streamed) response JSON, stored after a miss that
succeeded — from the JSON body, or assembled from a completed stream. A hit is
served without touching a replica: as JSON, or replayed as a stream (role
chunk, the content, the finish chunk, usage if asked, ``[DONE]``), each time
with a fresh id and timestamp. Stores: in-process (LRU, bounded entries) or
Redis (shared by gateway replicas, ``SET … EX ttl``); a Redis failure is a miss,
never an error.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson
from redis.exceptions import RedisError

from gpufleet.gateway.resumption import StreamProgress

_NOT_IN_KEY = ("stream", "stream_options", "user")
_FAILURES = (RedisError, OSError, TimeoutError)


def cache_key(tenant: str, kind: str, model: str, body: dict[str, Any]) -> str | None:
    """The entry of a deterministic request; ``None`` when its answer may vary."""
    if kind not in ("chat", "completions"):
        return None
    if body.get("tools") or body.get("functions") or body.get("tool_choice"):
        return None
    temperature = body.get("temperature")
    if body.get("seed") is None and not (isinstance(temperature, int | float) and temperature == 0):
        return None
    canonical = {k: v for k, v in body.items() if k not in _NOT_IN_KEY}
    canonical["model"] = model
    digest = hashlib.sha256()
    digest.update(f"{tenant}\0{kind}\0".encode())
    digest.update(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


class ResponseStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def put(self, key: str, value: bytes) -> None: ...


class MemoryResponseStore:
    """In-process LRU with a TTL; time is read at each call."""

    def __init__(self, ttl_s: float, max_entries: int):
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def put(self, key: str, value: bytes) -> None:
        self._entries[key] = (time.monotonic() + self._ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


class RedisResponseStore:
    """Entries in Redis with ``EX ttl``; any failure is a miss (or a skipped store)."""

    def __init__(self, url: str, prefix: str, ttl_s: float, timeout_s: float):
        import redis.asyncio as aioredis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        self._prefix = prefix
        self._ttl_s = max(1, round(ttl_s))
        self.num_errors = 0

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(self._prefix + key)
        except _FAILURES:  # a cache failure is a miss
            self.num_errors += 1
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes) -> None:
        try:
            await self._client.set(self._prefix + key, value, ex=self._ttl_s)
        except _FAILURES:
            self.num_errors += 1


def fresh_copy(cached: bytes, request_id: str) -> dict[str, Any]:
    """The cached response with a new id and timestamp (every answer has its own)."""
    response: dict[str, Any] = orjson.loads(cached)
    prefix = "chatcmpl" if response.get("object") == "chat.completion" else "cmpl"
    response["id"] = f"{prefix}-cache-{request_id}"
    response["created"] = int(time.time())
    return response


def replay_as_stream(response: dict[str, Any], include_usage: bool) -> bytes:
    """SSE events carrying ``response`` (a whole chat or text completion), then [DONE]."""
    chat = response.get("object") == "chat.completion"
    head = {"id": response["id"], "created": response["created"], "model": response["model"]}
    events: list[dict[str, Any]] = []
    for choice in response.get("choices", []):
        index = choice.get("index", 0)
        if chat:
            message = choice.get("message") or {}
            chunk = {**head, "object": "chat.completion.chunk"}
            events.append({**chunk, "choices": [
                {"index": index, "delta": {"role": "assistant", "content": ""},
                 "finish_reason": None}]})  # fmt: skip
            events.append({**chunk, "choices": [
                {"index": index, "delta": {"content": message.get("content") or ""},
                 "finish_reason": choice.get("finish_reason")}]})  # fmt: skip
        else:
            events.append({**head, "object": "text_completion", "choices": [
                {"index": index, "text": choice.get("text") or "",
                 "finish_reason": choice.get("finish_reason")}]})  # fmt: skip
    if include_usage and response.get("usage") is not None:
        obj = "chat.completion.chunk" if chat else "text_completion"
        events.append({**head, "object": obj, "choices": [], "usage": response["usage"]})
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def response_from_stream(
    kind: str, progress: StreamProgress, model: str, usage: dict[str, int]
) -> bytes | None:
    """The whole response a completed stream amounts to (to fill the cache)."""
    if not progress.finished or progress.response_id is None:
        return None
    choice: dict[str, Any] = {"index": 0, "finish_reason": progress.finish_reason}
    if kind == "chat":
        choice["message"] = {"role": "assistant", "content": progress.text}
        obj = "chat.completion"
    else:
        choice["text"] = progress.text
        obj = "text_completion"
    return orjson.dumps({
        "id": progress.response_id, "object": obj, "created": progress.created,
        "model": model, "choices": [choice], "usage": usage,
    })  # fmt: skip
