"""Shared helpers of the tenancy integration tests: keyed HTTP calls and log capture."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
from typing import Any

from gpufleet.tenancy.keys import hash_key
from tests.support.processes import ProcessGroup

CHAT = "/v1/chat/completions"
ADMIN_KEY = "adm-Zq8v3L2xT9kW4mN7pR1s"
KEYS = {
    "acme": "sk-acme-7f3a9c1e5b2d4f6a8c0e",
    "slow": "sk-slow-1b3d5f7a9c2e4g6i8k0m",
    "big": "sk-big-5n7p9r1t3v5x7z9b1d3f",
}


def chat(max_tokens: int = 2, model: str = "tiny") -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps({**body, "max_tokens": max_tokens}).encode()


def call(
    url: str, path: str, body: bytes | None = None, key: str | None = None, timeout_s: float = 10
) -> tuple[int, dict[str, str], Any]:
    """One request; returns (status, lower-cased headers, parsed JSON or raw text)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    conn.request("POST" if body is not None else "GET", path, body, headers)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = raw.decode(errors="replace")
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def tenancy_section(**overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "tenants": [
            {"name": "acme", "models": ["tiny"], "priority": 3},
            {"name": "slow", "requests_per_minute": 3},
            {"name": "big", "models": ["other"]},
        ],
        "keys": [{"hash": hash_key(key), "tenant": name} for name, key in KEYS.items()],
        "admin_key_hash": hash_key(ADMIN_KEY),
        "prices": {"tiny": {"prompt_usd_per_mtok": 1.0, "generation_usd_per_mtok": 2.0}},
    }
    section.update(overrides)
    return section


def stop_and_read(group: ProcessGroup, process: subprocess.Popen[bytes]) -> str:
    """Terminate a spawned gpufleet process and return everything it printed."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=15)
    return group.output(process)


def metric(url: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    _, _, text = call(url, "/metrics")
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
