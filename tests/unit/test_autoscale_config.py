"""fleet.yaml's ``autoscale:`` section and per-deployment limits; capacity at the SLO."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpufleet.autoscale import SloAutoscaler, replica_capacities
from gpufleet.config import load_config, parse_config
from gpufleet.errors import ConfigError
from gpufleet.plan.catalog import Catalog

FLEET: dict[str, Any] = {
    "models": [{"name": "llama-3-8b"}],
    "pools": [
        {"name": "l4-spot", "gpu": "l4", "capacity": "spot", "price_usd_per_gpu_hour": 0.4,
         "deployments": [{"model": "llama-3-8b", "min_replicas": 0, "max_replicas": 8}]},
        {"name": "h100", "gpu": "h100", "price_usd_per_gpu_hour": 6.88,
         "deployments": [{"model": "llama-3-8b", "replicas": 1}]},
    ],
}  # fmt: skip


def test_off_by_default_with_documented_defaults() -> None:
    config = parse_config(FLEET)
    assert config.autoscale.enabled is False
    assert config.autoscale.interval_s == 15.0
    assert config.autoscale.budget_usd_per_hour is None
    assert config.pools[1].deployments[0].max_replicas is None


def test_yaml_section_and_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    import yaml

    doc = {**FLEET, "autoscale": {
        "enabled": True, "cold_start_s": 95, "budget_usd_per_hour": 40,
        "models": {"llama-3-8b": {"ttft_s": 1.0, "capacity_requests_per_s": 3.5}},
    }}  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    config = load_config(path, env={"GPUFLEET__AUTOSCALE__INTERVAL_S": "5"})
    assert config.autoscale.enabled and config.autoscale.interval_s == 5.0
    assert config.autoscale.models["llama-3-8b"].ttft_s == 1.0
    caps = replica_capacities(config.autoscale, config, Catalog.load())
    assert caps["h100/llama-3-8b"].requests_per_s == 3.5
    assert caps["h100/llama-3-8b"].source == "configured"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"autoscale": {"bogus": 1}}, "autoscale.bogus: unknown key"),
        ({"autoscale": {"interval_s": 0}}, "autoscale.interval_s: Input should be greater than 0"),
        ({"autoscale": {"target_utilization": 1.5}},
         "autoscale.target_utilization: Input should be less than or equal to 1"),
        ({"autoscale": {"max_spot_fraction": -0.1}},
         "autoscale.max_spot_fraction: Input should be greater than or equal to 0"),
        ({"autoscale": {"models": {"nope": {"ttft_s": 1}}}},
         "autoscale.models.nope: unknown model 'nope'"),
        ({"autoscale": {"models": {"llama-3-8b": {"itl": 1}}}},
         "autoscale.models.llama-3-8b.itl: unknown key"),
        ({"pools": [{"name": "p", "gpu": "l4", "deployments": [
            {"model": "llama-3-8b", "min_replicas": 3, "max_replicas": 2}]}]},
         "pools[0].deployments[0].max_replicas: 2 is below min_replicas 3"),
        ({"pools": [{"name": "p", "gpu": "l4", "deployments": [
            {"model": "llama-3-8b", "min_replicas": -1}]}]},
         "pools[0].deployments[0].min_replicas: Input should be greater than or equal to 0"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key_path(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**FLEET, **patch})
    assert message in str(info.value)


def test_planner_capacity_per_pool_and_a_pool_that_cannot_meet_the_slo() -> None:
    config = parse_config({**FLEET, "autoscale": {"enabled": True}})
    caps = replica_capacities(config.autoscale, config, Catalog.load())
    l4, h100 = caps["l4-spot/llama-3-8b"], caps["h100/llama-3-8b"]
    assert l4.source == h100.source == "planner"
    assert 0 < l4.requests_per_s < h100.requests_per_s
    assert l4.max_in_flight >= 1
    strict = parse_config({**FLEET, "autoscale": {"enabled": True, "itl_s": 0.02}})
    caps = replica_capacities(strict.autoscale, strict, Catalog.load())
    assert caps["l4-spot/llama-3-8b"].requests_per_s == 0  # L4 decodes slower than 20 ms
    assert caps["h100/llama-3-8b"].requests_per_s > 0
    policy = SloAutoscaler(strict.autoscale, strict, Catalog.load())
    usable = {s.key: s.usable_per_s for s in policy.slots}
    assert usable["l4-spot/llama-3-8b"] == 0  # never chosen, however cheap


def test_without_a_catalog_capacity_is_guessed_from_concurrency() -> None:
    config = parse_config({**FLEET, "autoscale": {"target_in_flight_per_replica": 32}})
    cap = replica_capacities(config.autoscale, config)["h100/llama-3-8b"]
    assert cap.source == "concurrency guess"
    assert cap.requests_per_s == pytest.approx(32 / (256 * 0.1))
