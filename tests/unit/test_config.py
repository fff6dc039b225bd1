from __future__ import annotations

from pathlib import Path

import pytest

from gpufleet.config import load_config, parse_config
from gpufleet.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "examples" / "fleet.yaml"

MINIMAL = {
    "models": [{"name": "m", "aliases": ["m-alias"]}],
    "pools": [{"name": "p", "gpu": "h100", "deployments": [{"model": "m", "replicas": 2}]}],
}


def test_example_fleet_loads() -> None:
    config = load_config(EXAMPLE, env={})
    assert [m.name for m in config.models] == ["llama-3-8b", "llama-3-70b"]
    assert {p.capacity for p in config.pools} == {"spot", "on-demand"}
    assert config.model_names()["llama3-8b"] == "llama-3-8b"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"bogus": 1}, "fleet.yaml: bogus: unknown key"),
        ({"gateway": {"port": 70000}}, "gateway.port: Input should be less than or equal to 65535"),
        ({"gateway": {"prot": 1}}, "gateway.prot: unknown key"),
        ({"pools": [{"name": "p", "gpu": "h100", "capacity": "cheap"}]},
         "pools[0].capacity: Input should be 'on-demand' or 'spot'"),
        ({"pools": [{"name": "p", "gpu": "h100", "deployments": [{"model": "x"}]}]},
         "pools[0].deployments[0].model: unknown model 'x'"),
        ({"pools": [{"name": "p", "gpu": "h100", "price_usd_per_gpu_hour": -1}]},
         "pools[0].price_usd_per_gpu_hour: Input should be greater than or equal to 0"),
        ({"timeouts": {"first_byte_s": 0}},
         "timeouts.first_byte_s: Input should be greater than 0"),
        ({"routing": {"profile": "missing"}}, "routing.profile: no profile named 'missing'"),
        ({"models": [{"name": "m"}, {"name": "m"}]}, "models[1].name: duplicate model 'm'"),
        ({"pools": [{"name": "p", "gpu": "h100", "deployments": [
            {"model": "m", "endpoints": ["not a url"]}]}]},
         "pools[0].deployments[0].endpoints[0]: String should match pattern"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key_path(patch: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL, **patch})
    assert message in str(info.value)


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_config([1, 2])


def test_environment_overrides_file_values(tmp_path: Path) -> None:
    env = {
        "GPUFLEET__GATEWAY__PORT": "9123",
        "GPUFLEET__POOLS__1__PRICE_USD_PER_GPU_HOUR": "0.75",
        "GPUFLEET__GATEWAY__DEBUG_HEADER": "false",
        "UNRELATED": "x",
    }
    config = load_config(EXAMPLE, env=env)
    assert config.gateway.port == 9123
    assert config.pools[1].price_usd_per_gpu_hour == 0.75
    assert config.gateway.debug_header is False


def test_environment_override_of_missing_list_item_is_an_error() -> None:
    with pytest.raises(ConfigError, match="GPUFLEET__POOLS__9__GPU: no list item '9'"):
        load_config(EXAMPLE, env={"GPUFLEET__POOLS__9__GPU": "l4"})


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml", env={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken, env={})


def test_config_values_are_frozen() -> None:
    config = parse_config(MINIMAL)
    with pytest.raises(AttributeError):
        config.gateway.port = 1  # type: ignore[misc]
