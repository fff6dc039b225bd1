"""The Grafana dashboard of a fleet (``--target grafana``; also shipped as a ConfigMap).

Contract: ``dashboard(fleet)`` returns Grafana dashboard JSON (schemaVersion 39) as a
dict, deterministic (panel ids and positions follow the order below). Queries read the
gateway's ``gpufleet_*`` metrics (labels model, pool, gpu, endpoint, outcome), the
engines' ``vllm:*`` metrics (relabelled with model, pool, gpu by the PodMonitor) and
the DCGM exporter. Figures that need the fleet's shape (GPUs per replica, price per
replica-hour) are written into the queries per pool: a replica counts while any
gateway reports it (``gpufleet_endpoint_healthy``, counted once per endpoint).
"""

from __future__ import annotations

from typing import Any

from gpufleet.deploy.spec import FleetSpec, PoolSpec

UID = "gpufleet-fleet"
RATE = "$__rate_interval"
SEL = 'model=~"$model", pool=~"$pool", gpu=~"$gpu"'
WIDTH = 24
HEIGHT = 8


def dashboard(fleet: FleetSpec) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    for title, unit, targets in _panels(fleet):
        index = len(panels)
        width = WIDTH // 2
        panels.append(
            {
                "id": index + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {
                    "h": HEIGHT,
                    "w": width,
                    "x": (index % 2) * width,
                    "y": (index // 2) * HEIGHT,
                },
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "table", "placement": "bottom"}},
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "expr": expr,
                        "legendFormat": legend,
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    }
                    for i, (expr, legend) in enumerate(targets)
                ],
            }
        )
    return {
        "uid": UID,
        "title": "gpufleet",
        "description": "LLM fleet: throughput per GPU, latency, KV cache, queues, outcomes, cost.",
        "tags": ["gpufleet", "llm", "vllm"],
        "timezone": "browser",
        "editable": True,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": _variables()},
        "panels": panels,
    }


def _panels(fleet: FleetSpec) -> list[tuple[str, str, list[tuple[str, str]]]]:
    gpus = sorted({p.gpu_type for p in fleet.pools})
    per_gpu = [(_tokens_per_gpu([p for p in fleet.pools if p.gpu_type == g]), g) for g in gpus]
    cost = [(_cost(pool), pool.name) for pool in fleet.pools]
    if len(fleet.pools) > 1:
        cost.append((" + ".join(f"({_cost(p)} or vector(0))" for p in fleet.pools), "total"))
    return [
        ("Generated tokens/s per GPU, by GPU type", "short", per_gpu),
        (
            "Tokens/s by model",
            "short",
            [
                (
                    f"sum by (model) (rate(gpufleet_generation_tokens_total{{{SEL}}}[{RATE}]))",
                    "{{model}} generated",
                ),
                (
                    f"sum by (model) (rate(gpufleet_prompt_tokens_total{{{SEL}}}[{RATE}]))",
                    "{{model}} prompt",
                ),
            ],
        ),
        (
            "Time to first token by model",
            "s",
            _quantiles("gpufleet_time_to_first_token_seconds", "model"),
        ),
        (
            "Time to first token by GPU type",
            "s",
            _quantiles("gpufleet_time_to_first_token_seconds", "gpu"),
        ),
        (
            "Inter-token latency by model",
            "s",
            _quantiles("gpufleet_inter_token_latency_seconds", "model"),
        ),
        (
            "Inter-token latency by GPU type",
            "s",
            _quantiles("gpufleet_inter_token_latency_seconds", "gpu"),
        ),
        (
            "End-to-end latency by model",
            "s",
            _quantiles("gpufleet_e2e_request_latency_seconds", "model"),
        ),
        (
            "KV-cache usage",
            "percentunit",
            [
                (
                    f"avg by (model, gpu) (vllm:kv_cache_usage_perc{{{SEL}}})",
                    "{{model}} on {{gpu}} (mean)",
                ),
                (
                    f"max by (model, gpu) (vllm:kv_cache_usage_perc{{{SEL}}})",
                    "{{model}} on {{gpu}} (max)",
                ),
            ],
        ),
        (
            "Queue depth",
            "short",
            [
                (
                    'sum by (model) (gpufleet_queue_depth{model=~"$model"})',
                    "{{model}} at the gateway",
                ),
                (
                    f"sum by (model, gpu) (vllm:num_requests_waiting{{{SEL}}})",
                    "{{model}} waiting in engines on {{gpu}}",
                ),
                (
                    f"sum by (model, pool) (gpufleet_requests_in_flight{{{SEL}}})",
                    "{{model}} in flight to {{pool}}",
                ),
            ],
        ),
        (
            "Request outcomes",
            "reqps",
            [
                (
                    'sum by (model, outcome) (rate(gpufleet_requests_total{model=~"$model"}['
                    + RATE
                    + "]))",
                    "{{model}} {{outcome}}",
                )
            ],
        ),
        ("Cost per hour (replicas seen by the gateways)", "currencyUSD", cost),
        (
            "Cost per million generated tokens",
            "currencyUSD",
            [(f"({_cost(pool)}) / ({_mtok_per_hour(pool)})", pool.name) for pool in fleet.pools],
        ),
        (
            "GPU utilisation (DCGM)",
            "percent",
            [("avg by (modelName) (DCGM_FI_DEV_GPU_UTIL)", "{{modelName}}")],
        ),
        (
            "GPU memory used (DCGM)",
            "decmbytes",
            [
                ("avg by (modelName) (DCGM_FI_DEV_FB_USED)", "{{modelName}} mean"),
                ("max by (modelName) (DCGM_FI_DEV_FB_USED)", "{{modelName}} max"),
            ],
        ),
    ]


def _quantiles(histogram: str, by: str) -> list[tuple[str, str]]:
    rates = f"sum by (le, {by}) (rate({histogram}_bucket{{{SEL}}}[{RATE}]))"
    return [
        (f"histogram_quantile({q}, {rates})", f"p{round(q * 100)} {{{{{by}}}}}")
        for q in (0.5, 0.95, 0.99)
    ]


def _mtok_per_hour(pool: PoolSpec) -> str:
    tokens = f'sum(rate(gpufleet_generation_tokens_total{{pool="{pool.name}"}}[{RATE}]))'
    return f"{tokens} * 3600 / 1e6"


def _replicas(pool: PoolSpec) -> str:
    return f'count(count by (endpoint) (gpufleet_endpoint_healthy{{pool="{pool.name}"}}))'


def _tokens_per_gpu(pools: list[PoolSpec]) -> str:
    tokens = " + ".join(
        f'(sum(rate(gpufleet_generation_tokens_total{{pool="{p.name}"}}[{RATE}])) or vector(0))'
        for p in pools
    )
    num_gpus = " + ".join(f"({_replicas(p)} * {p.gpus_per_replica} or vector(0))" for p in pools)
    return f"({tokens}) / ({num_gpus})"


def _cost(pool: PoolSpec) -> str:
    price = round(pool.price_usd_per_gpu_hour * pool.gpus_per_replica, 6)
    return f"{_replicas(pool)} * {price:g}"


def _variables() -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        }
    ]
    for name, label in (("model", "Model"), ("pool", "Pool"), ("gpu", "GPU type")):
        variables.append(
            {
                "name": name,
                "label": label,
                "type": "query",
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "query": {
                    "query": f"label_values(gpufleet_endpoint_healthy, {name})",
                    "refId": name,
                },
                "definition": f"label_values(gpufleet_endpoint_healthy, {name})",
                "includeAll": True,
                "multi": True,
                "allValue": ".*",
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "refresh": 2,
                "sort": 1,
                "hide": 0,
            }
        )
    return variables
