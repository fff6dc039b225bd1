"""The tenancy section of fleet.yaml: validation and environment overrides."""

from __future__ import annotations

import pytest

from gpufleet.config import load_config, parse_config
from gpufleet.errors import ConfigError
from gpufleet.tenancy.keys import hash_key

BASE = {"models": [{"name": "tiny"}], "pools": []}


def test_default_is_open() -> None:
    assert not parse_config(BASE).tenancy.enabled


def test_keys_need_a_known_tenant_and_a_hash() -> None:
    good = {"tenants": [{"name": "a"}], "keys": [{"hash": hash_key("k"), "tenant": "a"}]}
    assert parse_config({**BASE, "tenancy": good}).tenancy.enabled
    with pytest.raises(ConfigError, match="unknown tenant"):
        parse_config({**BASE, "tenancy": {**good, "tenants": [{"name": "b"}]}})
    with pytest.raises(ConfigError, match=r"tenancy\.keys"):
        parse_config({**BASE, "tenancy": {**good, "keys": [{"hash": "k", "tenant": "a"}]}})


def test_env_sets_keys_and_admin_hash(tmp_path: object) -> None:
    env = {
        "GPUFLEET__TENANCY__TENANTS": "[{name: a, requests_per_minute: 5}]",
        "GPUFLEET__TENANCY__KEYS": f"[{{hash: '{hash_key('k')}', tenant: a}}]",
        "GPUFLEET__TENANCY__ADMIN_KEY_HASH": hash_key("admin"),
        "GPUFLEET__MODELS": "[{name: tiny}]",
        "GPUFLEET__POOLS": "[]",
    }
    tenancy = load_config(None, env).tenancy
    assert tenancy.keys[0].hash == hash_key("k")
    assert tenancy.admin_key_hash == hash_key("admin")
    assert tenancy.tenants[0].requests_per_minute == 5
