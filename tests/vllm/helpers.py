"""Shared pieces of the real-vLLM tier: a gateway in front of the vLLM servers, clients."""

from __future__ import annotations

import json
from pathlib import Path

import openai

from tests.support.processes import ProcessGroup, fleet_config, http_get, wait_for
from tests.vllm.vllm_servers import SERVED_NAME

IGNORE_EOS = {"ignore_eos": True}
"""vLLM's extension: generate exactly max_tokens (a random model may pick </s> early)."""


def start_gateway(
    procs: ProcessGroup, urls: list[str], tmp: Path, profile: str = "default", **sections: object
) -> str:
    config = fleet_config(urls, model=SERVED_NAME, profile=profile, **sections)
    config["models"] = [{"name": SERVED_NAME, "context_length": 512, "lora_adapters": ["ghost"]}]
    config["scrape"] = {"interval_s": 0.1}
    config["timeouts"] = {"connect_s": 1.0, "first_byte_s": 30.0, "idle_s": 10.0, "total_s": 120}
    url = procs.gateway(config, tmp)
    wait_for(
        lambda: all(
            view["state"] == "healthy" and view["metrics_age_s"] is not None
            for view in endpoints(url).values()
        ),
        timeout_s=10.0,
        what="every vLLM replica healthy and scraped",
    )
    return url


def client(url: str, **options: object) -> openai.OpenAI:
    base = url if url.endswith("/v1") else url + "/v1"
    return openai.OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=120, **options)  # type: ignore[arg-type]


def endpoints(gateway_url: str) -> dict[str, dict[str, object]]:
    """The gateway's view of its replicas, by URL."""
    _, body = http_get(gateway_url + "/admin/endpoints")
    return {e["url"]: e for e in json.loads(body)["endpoints"]}
