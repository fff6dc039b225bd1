"""Label values/object names, and the ``deploy:`` section of fleet.yaml."""

from __future__ import annotations

import re

import pytest
import yaml

from gpufleet.backends.discovery_labels import default_selector, label_value
from gpufleet.config import parse_config
from gpufleet.deploy.render import render
from gpufleet.errors import ConfigError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MINIMAL = {
    "models": [{"name": "m"}],
    "pools": [{"name": "p", "gpu": "l4", "deployments": [{"model": "m"}]}],
}


@pytest.mark.parametrize(
    "name", ["llama-3-8b", "meta-llama/Llama-3.1-405B", "Qwen2.5:72b", "x" * 80, "--", "A_B"]
)
def test_label_values_are_dns_labels(name: str) -> None:
    value = label_value(name)
    assert DNS_LABEL.match(value) and len(value) <= 63
    assert label_value(value) == value


def test_valid_names_are_kept_and_long_ones_stay_distinct() -> None:
    assert label_value("llama-3-8b") == "llama-3-8b"
    assert label_value("a" * 70 + "1") != label_value("a" * 70 + "2")
    assert default_selector("H100 pool") == {
        "app.kubernetes.io/name": "vllm",
        "gpufleet.io/pool": "h100-pool",
    }


def test_a_fleet_without_deploy_section_gets_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.deploy.namespace == "gpufleet"
    assert config.deploy.engine.gpu_memory_utilization == 0.9
    assert render(config, "k8s")


@pytest.mark.parametrize(
    ("deploy", "message"),
    [
        ({"bogus": 1}, "deploy.bogus: unknown key"),
        ({"namespace": "Not_A_Label"}, "deploy.namespace: String should match pattern"),
        ({"engine": {"gpu_memory_utilization": 1.5}}, "deploy.engine.gpu_memory_utilization"),
        ({"models": {"m": {"weights_uri": "ftp://x"}}}, "deploy.models.m.weights_uri"),
        ({"models": {"m": {"weights_sha256": "abc"}}}, "deploy.models.m.weights_sha256"),
        ({"gateway": {"replicas": 1}}, "deploy.gateway.replicas"),
        ({"ingress": {"kind": "nginx"}}, "deploy.ingress.kind"),
    ],
)
def test_bad_deploy_values_name_the_key_path(deploy: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({**MINIMAL, "deploy": deploy})


def test_deploy_references_are_checked_at_render_time() -> None:
    config = parse_config({**MINIMAL, "deploy": {"models": {"nope": {}}}})
    with pytest.raises(ConfigError, match=r"deploy\.models\.nope: unknown model"):
        render(config, "k8s")
    quoted = parse_config({**MINIMAL, "deploy": {"engine": {"extra_args": ["--x='y'"]}}})
    with pytest.raises(ConfigError, match="single quote"):
        render(quoted, "k8s")


def test_the_gateway_reads_a_valid_fleet_yaml_that_discovers_every_rendered_pool() -> None:
    from gpufleet.deploy.k8s import k8s_objects
    from tests.unit.deploy.fleets import spec

    fleet = spec("multinode")
    config_map = next(o for o in k8s_objects(fleet) if o["metadata"]["name"].endswith("-config"))
    gateway_config = parse_config(yaml.safe_load(config_map["data"]["fleet.yaml"]))
    assert gateway_config.gateway.host == "0.0.0.0"
    discovered = {p.name: p.discovery for p in gateway_config.pools}
    assert discovered["external"] is None, "static endpoints stay static"
    for name in ("h100-multinode", "l4-spot", "h200"):
        discovery = discovered[name]
        assert discovery is not None and discovery.namespace == "llm"
        assert discovery.selector == default_selector(name)
