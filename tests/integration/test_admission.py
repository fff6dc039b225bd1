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


def test_a_full_queue_sheds_batch_work_to_admit_an_interactive_request(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    """No replica yet, a queue of two full of batch requests: an interactive arrival takes the
    place of the batch request due last, which gets a 429 at once, long before its deadline."""
    port = free_port()
    url = procs.gateway(
        fleet_config([f"http://127.0.0.1:{port}"], admission={"max_queue_len": 2}),
        tmp_path,
        wait_ready=False,
    )
    outcomes: dict[str, object] = {}

    def ask(name: str, request_class: str) -> None:
        api = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30)
        try:
            api.chat.completions.create(
                model="tiny",
                messages=[{"role": "user", "content": name}],
                max_tokens=3,
                extra_headers={"x-request-class": request_class},
            )
            outcomes[name] = "served"
        except openai.APIStatusError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=ask, args=(f"batch-{i}", "batch")) for i in range(2)]
    for i, thread in enumerate(threads):
        thread.start()
        wait_for(lambda i=i: _queued(url) >= i + 1, what=f"batch request {i} queued")
    started = time.monotonic()
    urgent = threading.Thread(target=ask, args=("interactive", "interactive"))
    urgent.start()
    threads[1].join(timeout=10)
    assert time.monotonic() - started < 5.0, "shed at once, not at its 600 s deadline"
    shed = outcomes["batch-1"]
    assert isinstance(shed, openai.APIStatusError) and shed.status_code == 429
    assert "displaced by a higher-priority" in json.loads(shed.response.content)["error"]["message"]
    assert int(shed.response.headers["retry-after"]) >= 1
    procs.engine(port=port)
    for thread in (threads[0], urgent):
        thread.join(timeout=30)
    assert outcomes["interactive"] == "served" and outcomes["batch-0"] == "served"
