from __future__ import annotations

from pathlib import Path

from gpufleet.config import load_config
from gpufleet.gateway.fleet import static_endpoint_specs
from gpufleet.plan.catalog import Catalog
from gpufleet.plan.economics import replica_economics

EXAMPLE = Path(__file__).parents[3] / "examples" / "fleet.yaml"


def test_spot_l40s_is_cheaper_per_token_but_slower_than_h100() -> None:
    catalog = Catalog.load()
    h100 = replica_economics(catalog, "llama-3-8b", "h100", 1, 6.88, 8192)
    l40s = replica_economics(catalog, "llama-3-8b", "l40s", 1, 1.10, 8192)
    assert h100 is not None and l40s is not None
    assert l40s.cost_usd_per_mtok < h100.cost_usd_per_mtok
    assert l40s.prefill_tokens_per_s < h100.prefill_tokens_per_s
    assert l40s.decode_tokens_per_s < h100.decode_tokens_per_s


def test_unknown_or_unfit_deployments_have_no_figures() -> None:
    catalog = Catalog.load()
    assert replica_economics(catalog, "no-such-model", "h100", 1, 1.0, 8192) is None
    assert replica_economics(catalog, "llama-3-70b", "h100", 1, 1.0, 8192) is None


def test_gateway_endpoints_carry_cost_and_prefill_speed() -> None:
    config = load_config(EXAMPLE, env={})
    pools = [p for p in config.pools if p.name in ("h100-on-demand", "l40s-spot")]
    from dataclasses import replace

    with_urls = replace(
        config,
        pools=tuple(
            replace(p, deployments=tuple(
                replace(d, endpoints=("http://127.0.0.1:9",)) for d in p.deployments
            ))
            for p in pools
        ),
    )  # fmt: skip
    costs = {spec.pool: spec.cost_usd_per_mtok for spec in static_endpoint_specs(with_urls)}
    assert 0 < costs["l40s-spot"] < costs["h100-on-demand"]
