"""API keys: hashing, bearer parsing, and the hash → tenant lookup.

Keys are stored and compared only as ``sha256:<hex>`` of the raw key. A lookup
hashes the presented key, finds the entry by its hash and confirms it with
``hmac.compare_digest``, so neither the raw key nor a timing signal about the
stored hashes leaves this module. Raw keys are never kept, logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gpufleet.errors import AuthenticationError

HASH_PREFIX = "sha256:"
MAX_KEY_CHARS = 512


def hash_key(key: str) -> str:
    """The stored form of ``key``: ``sha256:`` + hex digest of its UTF-8 bytes."""
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def bearer_token(authorization: str | None) -> str:
    """The key in an ``Authorization: Bearer KEY`` header value.

    Raises ``AuthenticationError`` (401) when the header is missing or malformed; the
    message never repeats the header's value.
    """
    if not authorization:
        raise AuthenticationError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'."
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_KEY_CHARS or " " in token:
        raise AuthenticationError(
            "Malformed Authorization header; expected 'Authorization: Bearer YOUR_KEY'."
        )
    return token


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant's policy, resolved from config; ``None`` limits are unlimited."""

    name: str
    models: frozenset[str]
    priority: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    token_budget: int | None = None
    budget_period_s: float = 86400.0

    def allows(self, model: str) -> bool:
        return not self.models or model in self.models


class KeyRing:
    """Key hash → tenant. Replaced wholesale (``replace``) when keys are re-read."""

    __slots__ = ("_by_hash",)

    def __init__(self, entries: Mapping[str, Tenant] | None = None):
        self._by_hash: dict[str, Tenant] = dict(entries or {})

    def __len__(self) -> int:
        return len(self._by_hash)

    def replace(self, entries: Mapping[str, Tenant]) -> None:
        self._by_hash = dict(entries)

    def authenticate(self, authorization: str | None) -> Tenant:
        """The tenant of the bearer key in ``authorization``, or ``AuthenticationError``."""
        presented = hash_key(bearer_token(authorization))
        tenant = self._by_hash.get(presented)
        # The dict finds the entry by hash; the stored hash is then confirmed in constant time.
        stored = presented if tenant is not None else HASH_PREFIX
        if tenant is None or not hmac.compare_digest(presented, stored):
            raise AuthenticationError("Incorrect API key provided.")
        return tenant


def matches(authorization: str | None, key_hash: str | None) -> bool:
    """True when the bearer key in ``authorization`` hashes to ``key_hash`` (constant time)."""
    if key_hash is None:
        return False
    return hmac.compare_digest(hash_key(bearer_token(authorization)), key_hash)


def entries_for(
    pairs: Iterable[tuple[str, str]], tenants: Mapping[str, Tenant]
) -> dict[str, Tenant]:
    """(hash, tenant name) pairs → lookup entries; pairs naming unknown tenants are dropped."""
    return {h: tenants[name] for h, name in pairs if name in tenants}
