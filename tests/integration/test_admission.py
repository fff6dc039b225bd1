"""Requests wait in the gateway while no replica is ready, up to their deadline."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import openai

from tests.support.processes import ProcessGroup, fleet_config, free_port, http_get, wait_for


def test_no_ready_replica_waits_for_the_deadline_then_503(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    url = procs.gateway(
        fleet_config([f"http://127.0.0.1:{free_port()}"]), tmp_path, wait_ready=False
    )
    api = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    started = time.monotonic()
    try:
        api.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "anyone?"}],
            extra_headers={"x-request-deadline-ms": "400"},
        )
        raise AssertionError("expected a 503")
    except openai.APIStatusError as exc:
        waited = time.monotonic() - started
        assert exc.status_code == 503
        assert int(exc.response.headers["retry-after"]) >= 1
        assert json.loads(exc.response.content)["error"]["code"] == "no_capacity"
    assert 0.35 <= waited < 3.0, waited


def test_scale_from_zero_request_is_served_when_a_replica_appears(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    port = free_port()
    url = procs.gateway(fleet_config([f"http://127.0.0.1:{port}"]), tmp_path, wait_ready=False)
    result: dict[str, str] = {}

    def ask() -> None:
        api = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30)
        reply = api.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "wake up"}], max_tokens=3
        )
        result["text"] = reply.choices[0].message.content or ""

    thread = threading.Thread(target=ask)
    thread.start()
    wait_for(lambda: _queued(url) >= 1, what="request queued")
    engine = procs.engine(port=port)
    thread.join(timeout=30)
    assert result.get("text"), "the queued request was served once the replica came up"
    assert engine.metric("vllm:request_success_total") == 1


def _queued(url: str) -> float:
    _, body = http_get(url + "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("gpufleet_queue_depth{"):
            total += float(line.rsplit(" ", 1)[1])
    return total
