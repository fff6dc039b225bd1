"""Pure tenancy parts with plain values: keys, buckets, budgets, limiter, breaker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gpufleet.errors import AuthenticationError
from gpufleet.tenancy.breaker import CircuitBreaker
from gpufleet.tenancy.buckets import BudgetWindow, TokenBucket
from gpufleet.tenancy.keys import KeyRing, Tenant, bearer_token, hash_key, matches
from gpufleet.tenancy.quota import Limit, TenantLimiter

KEY = "sk-test-0123456789"
TENANT = Tenant("acme", frozenset({"tiny"}))


def test_hash_is_sha256_hex() -> None:
    digest = hash_key(KEY)
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    assert KEY not in digest


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic abc", "bearer a b", "Bearer " + "x" * 600]
)
def test_malformed_authorization_is_401_without_echo(header: str | None) -> None:
    with pytest.raises(AuthenticationError) as info:
        bearer_token(header)
    assert info.value.status == 401 and info.value.code == "invalid_api_key"
    secret = (header or "").partition(" ")[2].strip()
    assert not secret or secret not in info.value.message


def test_keyring_finds_tenant_by_hash_only() -> None:
    ring = KeyRing({hash_key(KEY): TENANT})
    assert ring.authenticate(f"Bearer {KEY}") is TENANT
    assert ring.authenticate(f"bearer   {KEY} ") is TENANT
    with pytest.raises(AuthenticationError):
        ring.authenticate(f"Bearer {KEY}x")
    assert matches(f"Bearer {KEY}", hash_key(KEY)) and not matches(f"Bearer {KEY}", None)


def test_hash_key_helper_reads_stdin() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gpufleet.tenancy.hash_key"],
        input=KEY + "\n", capture_output=True, text=True, check=True, timeout=20,
    )  # fmt: skip
    assert done.stdout.strip() == hash_key(KEY)
    assert KEY not in done.stdout + done.stderr


def test_token_bucket_refills_linearly_and_allows_debt() -> None:
    bucket = TokenBucket(60.0)  # 1 per second
    assert all(bucket.take(1, 0.0) == 0 for _ in range(60))
    assert bucket.take(1, 0.0) == pytest.approx(1.0)
    assert bucket.take(1, 0.5) == pytest.approx(0.5)
    assert bucket.take(1, 1.0) == 0
    bucket.charge(30, 1.0)
    assert bucket.wait_s(1, 1.0) == pytest.approx(31.0)


def test_budget_window_resets_each_period() -> None:
    budget = BudgetWindow(100, 10.0)
    assert budget.wait_s(1.0) == 0
    budget.charge(150, 2.0)
    assert budget.wait_s(3.0) == pytest.approx(7.0)
    assert budget.wait_s(10.0) == 0


def test_limiter_checks_all_and_commits_only_on_success() -> None:
    tenant = Tenant("t", frozenset(), requests_per_minute=2, max_concurrent=1, token_budget=50)
    limiter = TenantLimiter(tenant)
    assert limiter.admit(0.0) is None
    refusal = limiter.admit(0.0)
    assert refusal is not None and refusal.limit is Limit.CONCURRENCY
    limiter.settle(60, 0.1)
    assert limiter.in_flight == 0
    refusal = limiter.admit(0.2)
    assert refusal is not None and refusal.limit is Limit.BUDGET
    assert limiter.requests is not None and limiter.requests.level == pytest.approx(1.0, abs=0.01)


def test_limiter_requests_per_minute() -> None:
    limiter = TenantLimiter(Tenant("t", frozenset(), requests_per_minute=3))
    assert [limiter.admit(0.0) is None for _ in range(4)] == [True, True, True, False]
    refusal = limiter.admit(0.0)
    assert refusal is not None and refusal.limit is Limit.REQUESTS
    assert refusal.retry_after_s == pytest.approx(20.0)


def test_breaker_opens_skips_then_probes_once() -> None:
    breaker = CircuitBreaker(max_failures=2, cooldown_s=1.0)
    assert breaker.allow(0.0)
    assert not breaker.record_failure(0.0)
    assert breaker.record_failure(0.1)
    assert not breaker.allow(0.5)
    assert breaker.allow(1.2)  # the one probe
    assert not breaker.allow(1.2)
    assert breaker.record_failure(1.3)
    assert not breaker.allow(2.0)
    assert breaker.allow(2.4)
    assert breaker.record_success()
    assert breaker.allow(2.4) and breaker.allow(2.4)
