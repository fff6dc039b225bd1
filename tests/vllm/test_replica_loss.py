"""Draining and losing a real vLLM replica (4): in-flight streams finish on a draining
replica; a killed replica is ejected, traffic goes on, and its cut stream is resumed."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ProcessGroup, http_post, wait_for
from tests.vllm.conftest import VllmFleet
from tests.vllm.helpers import IGNORE_EOS, client, endpoints, start_gateway

DEBUG = {"x-gpufleet-debug": "1"}
MESSAGES = [{"role": "user", "content": "tell me a long story about the fleet"}]


def url_of(gateway: str, endpoint_id: str) -> str:
    return next(u for u, v in endpoints(gateway).items() if v["id"] == endpoint_id)


def open_stream(gateway: str, max_tokens: int) -> tuple[str, Any]:
    """A streaming chat request; returns (replica URL, the stream)."""
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="tiny", messages=MESSAGES, max_tokens=max_tokens, temperature=0, stream=True,
        stream_options={"include_usage": True}, extra_body=IGNORE_EOS, extra_headers=DEBUG,
    )  # fmt: skip
    return url_of(gateway, raw.headers["x-gpufleet-endpoint"]), raw.parse()


def test_draining_a_real_replica_lets_its_streams_finish(
    vllm_fleet: VllmFleet, procs: ProcessGroup, tmp_path: Path
) -> None:
    url = start_gateway(procs, vllm_fleet.urls, tmp_path, profile="round-robin")
    replica, stream = open_stream(url, max_tokens=300)
    chunks = [next(stream)]
    status, _ = http_post(url + "/admin/drain", json.dumps({"endpoint": replica}).encode())
    assert status == 200
    served_by = []
    for i in range(4):
        raw = client(url).completions.with_raw_response.create(
            model="tiny", prompt=f"while draining {i}", max_tokens=4, extra_headers=DEBUG
        )
        served_by.append(url_of(url, raw.headers["x-gpufleet-endpoint"]))
    assert replica not in served_by  # nothing new goes to the draining replica
    chunks.extend(stream)
    tokens = [c for c in chunks if c.choices and c.choices[0].delta.role is None]
    assert (
        tokens[-1].choices[0].finish_reason == "length"
    )  # (vLLM may put several tokens in one event)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 300


@pytest.mark.destructive
def test_killed_replica_is_ejected_and_its_stream_resumed(
    vllm_fleet: VllmFleet, procs: ProcessGroup, tmp_path: Path
) -> None:
    url = start_gateway(
        procs, vllm_fleet.urls, tmp_path, profile="round-robin",
        health={"interval_s": 0.2, "timeout_s": 0.5},
    )  # fmt: skip
    uninterrupted = client(url).chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=2, temperature=0
    )
    replica, stream = open_stream(url, max_tokens=300)
    victim = next(s for s in vllm_fleet.servers if s.url == replica)
    chunks = [next(stream) for _ in range(30)]  # the stream is well under way
    killer = threading.Thread(target=victim.kill)
    killer.start()
    chunks.extend(stream)  # the client just keeps reading
    killer.join()
    assert len({c.id for c in chunks}) == 1
    roles = [c for c in chunks if c.choices and c.choices[0].delta.role is not None]
    tokens = [c for c in chunks if c.choices and c.choices[0].delta.role is None]
    assert len(roles) == 1
    assert tokens[-1].choices[0].finish_reason == "length", "resumed to its full length"
    assert all(c.choices[0].finish_reason is None for c in tokens[:-1])
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 300
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert uninterrupted.usage is not None
    assert abs(usage.prompt_tokens - uninterrupted.usage.prompt_tokens) <= 3
    # the killed replica is out of rotation; traffic continues on the other one
    wait_for(
        lambda: endpoints(url)[replica]["state"] in ("ejected", "unhealthy"),
        timeout_s=5.0,
        what="killed replica ejected",
    )
    for i in range(6):
        answer = client(url).completions.create(model="tiny", prompt=f"after {i}", max_tokens=3)
        assert answer.choices[0].finish_reason in ("length", "stop")
