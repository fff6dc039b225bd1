"""The gateway's /openapi.json documents every route the gateway serves."""

from __future__ import annotations

import json
from importlib.resources import files

from gpufleet.config import parse_config
from gpufleet.control.admin import PREEMPT_PATH
from gpufleet.gateway.service import Gateway

FLEET = {
    "models": [{"name": "m", "context_length": 4096}],
    "pools": [{"name": "p", "gpu": "h100-sxm", "price_usd_per_gpu_hour": 4.0,
               "deployments": [{"model": "m", "endpoints": ["http://127.0.0.1:9"]}]}],
}  # fmt: skip


def documented() -> dict[str, set[str]]:
    doc = json.loads(files("gpufleet").joinpath("data/openapi.json").read_bytes())
    return {path: {verb.upper() for verb in ops} for path, ops in doc["paths"].items()}


def test_every_route_of_the_gateway_is_documented_and_nothing_else() -> None:
    app = Gateway.build(parse_config(FLEET)).app
    served = {
        *app.routes(),
        ("POST", PREEMPT_PATH),
    }  # added at runtime by `gpufleet up --autoscale`
    doc = {(method, path) for path, methods in documented().items() for method in methods}
    assert doc == served


def test_without_admin_routes_only_the_documented_public_ones_remain() -> None:
    app = Gateway.build(parse_config({**FLEET, "gateway": {"admin_enabled": False}})).app
    paths = {path for _, path in app.routes()}
    assert paths <= set(documented())
    assert not any(p.startswith(("/admin", "/dashboard")) for p in paths)
