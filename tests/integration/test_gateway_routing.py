"""Routing spreads load as each policy promises, counted by the engines themselves."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import openai

from tests.support.processes import Engine, ProcessGroup, fleet_config


def finished_counts(engines: list[Engine]) -> list[int]:
    return [int(e.metric("vllm:request_success_total")) for e in engines]


def chat(url: str, content: str, max_tokens: int = 4, **extra: object) -> str:
    api = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    response = api.chat.completions.with_raw_response.create(
        model="tiny",
        messages=[{"role": "user", "content": content}],
        max_tokens=max_tokens,
        extra_headers={"x-gpufleet-debug": "1", **extra.pop("headers", {})},  # type: ignore[dict-item]
        **extra,  # type: ignore[arg-type]
    )
    return response.headers["x-gpufleet-endpoint"]


def test_round_robin_spreads_exactly_evenly(procs: ProcessGroup, tmp_path: Path) -> None:
    engines = [procs.engine() for _ in range(3)]
    config = fleet_config([e.url for e in engines], scorers=[{"name": "round-robin-scorer"}])
    url = procs.gateway(config, tmp_path)
    for i in range(30):
        chat(url, f"sequential {i}")
    assert finished_counts(engines) == [10, 10, 10]


def test_least_outstanding_balances_concurrent_requests(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    engines = [procs.engine(speed=5.0) for _ in range(2)]
    url = procs.gateway(fleet_config([e.url for e in engines]), tmp_path)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: chat(url, f"concurrent {i}", max_tokens=40), range(32)))
    counts = finished_counts(engines)
    assert sum(counts) == 32
    assert min(counts) >= 12, counts


def test_power_of_two_choices_uses_every_replica(procs: ProcessGroup, tmp_path: Path) -> None:
    engines = [procs.engine(speed=5.0) for _ in range(3)]
    config = fleet_config([e.url for e in engines], picker="power-of-two-picker")
    url = procs.gateway(config, tmp_path)
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda i: chat(url, f"p2c {i}", max_tokens=20), range(36)))
    counts = finished_counts(engines)
    assert sum(counts) == 36
    assert min(counts) >= 6, counts


def test_session_affinity_keeps_sessions_on_one_replica(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    engines = [procs.engine() for _ in range(3)]
    config = fleet_config(
        [e.url for e in engines],
        scorers=[
            {"name": "session-affinity-scorer", "weight": 10},
            {"name": "least-outstanding-scorer", "weight": 1},
        ],
    )
    url = procs.gateway(config, tmp_path)
    placements: dict[str, set[str]] = {}
    for turn in range(4):
        for session in range(12):
            key = f"session-{session}"
            endpoint = chat(url, f"turn {turn}", headers={"x-session-id": key})
            placements.setdefault(key, set()).add(endpoint)
    assert all(len(endpoints) == 1 for endpoints in placements.values()), placements
    used = {next(iter(endpoints)) for endpoints in placements.values()}
    assert len(used) >= 2, "sessions must spread over replicas"
    # the OpenAI `user` field is a session key too
    first = chat(url, "user field", user="alice")
    assert all(chat(url, f"again {i}", user="alice") == first for i in range(3))
