"""API keys with the in-process store: 401/403/429 in OpenAI's shape, priority band,
usage at /admin/usage and in /metrics, and no key material in answers or logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.tenancy_helpers import (
    ADMIN_KEY,
    CHAT,
    KEYS,
    call,
    chat,
    metric,
    stop_and_read,
    tenancy_section,
)
from tests.support.processes import ProcessGroup, fleet_config


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ProcessGroup]]:
    group = ProcessGroup()
    try:
        engine = group.engine(speed=1000)
        config = fleet_config([engine.url], tenancy=tenancy_section())
        config["gateway"] = {"access_log": "-"}
        url = group.gateway(config, Path(tmp_path_factory.mktemp("tenancy")))
        yield url, group
    finally:
        group.close()


def test_missing_and_unknown_keys_are_401(keyed: tuple[str, ProcessGroup]) -> None:
    url, _ = keyed
    for key in (None, "sk-wrong", "", KEYS["acme"] + "x"):
        status, _, payload = call(url, CHAT, chat(), key=key)
        assert status == 401
        assert payload["error"]["code"] == "invalid_api_key"
        assert payload["error"]["type"] == "authentication_error"


def test_model_not_allowed_is_403(keyed: tuple[str, ProcessGroup]) -> None:
    url, _ = keyed
    status, _, payload = call(url, CHAT, chat(), key=KEYS["big"])
    assert status == 403 and payload["error"]["param"] == "model"
    status, _, _ = call(url, CHAT, chat(model="tiny-alias"), key=KEYS["acme"])
    assert status == 200  # an alias of an allowed model


def test_request_rate_limit_is_429_with_retry_after(keyed: tuple[str, ProcessGroup]) -> None:
    url, _ = keyed
    statuses = [call(url, CHAT, chat(), key=KEYS["slow"])[:2] for _ in range(4)]
    assert [s for s, _ in statuses] == [200, 200, 200, 429]
    assert int(statuses[-1][1]["retry-after"]) >= 1


def test_usage_endpoint_needs_admin_key_and_counts(keyed: tuple[str, ProcessGroup]) -> None:
    url, _ = keyed
    assert call(url, "/admin/usage")[0] == 401
    assert call(url, "/admin/usage", key=KEYS["acme"])[0] == 401
    assert call(url, "/admin/endpoints", key=KEYS["acme"])[0] == 401
    _, _, before = call(url, "/admin/usage", key=ADMIN_KEY)
    assert call(url, CHAT, chat(max_tokens=3), key=KEYS["acme"])[0] == 200
    status, _, after = call(url, "/admin/usage", key=ADMIN_KEY)
    assert status == 200 and after["scope"] == "process"
    acme, acme_before = after["tenants"]["acme"], before["tenants"]["acme"]
    assert acme["requests"] == acme_before["requests"] + 1
    assert acme["generation_tokens"] == acme_before["generation_tokens"] + 3
    assert acme["cost_usd"] > acme_before["cost_usd"]
    assert (
        metric(url, "gpufleet_tenant_generation_tokens_total", tenant="acme")
        == (acme["generation_tokens"])
    )
    assert metric(url, "gpufleet_tenant_rejected_total", tenant="slow") >= 1


def test_no_key_material_in_answers_or_logs(keyed: tuple[str, ProcessGroup]) -> None:
    """Runs last in this module: it stops the gateway to read everything it printed."""
    url, group = keyed
    probes = [*KEYS.values(), ADMIN_KEY, "sk-probe-unknown-key-123"]
    for key in probes:
        for path in (CHAT, "/admin/usage", "/v1/models", "/metrics"):
            _, headers, payload = call(url, path, chat() if path == CHAT else None, key=key)
            assert key not in str(payload) and key not in str(headers)
    log = stop_and_read(group, group.processes[-1])
    assert '"tenant": "acme"' in log or '"tenant":"acme"' in log  # the access log ran
    assert "requires API keys" in log
    for key in probes:
        assert key not in log


def test_open_gateway_says_so(procs: ProcessGroup, tmp_path: Path) -> None:
    engine = procs.engine(speed=1000)
    url = procs.gateway(fleet_config([engine.url]), tmp_path)
    assert call(url, CHAT, chat())[0] == 200
    assert call(url, "/admin/usage")[:1] == (200,)
    out = stop_and_read(procs, procs.processes[-1])
    assert "OPEN: no API keys configured" in out
