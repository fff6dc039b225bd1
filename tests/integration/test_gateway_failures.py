"""Failures of replicas: clients still get correct answers, or a well-formed end of stream."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
from pathlib import Path

import openai

from tests.support.processes import (
    ProcessGroup,
    fleet_config,
    free_port,
    http_get,
    http_post,
    wait_for,
)


def ask(url: str, content: str = "hi", max_tokens: int = 4) -> str:
    api = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=20)
    response = api.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": content}], max_tokens=max_tokens
    )
    assert response.choices[0].finish_reason == "length"
    return response.choices[0].message.content or ""


def round_robin(endpoints: list[str], **sections: object) -> dict[str, object]:
    return fleet_config(endpoints, scorers=[{"name": "round-robin-scorer"}], **sections)


def test_replica_refusing_connections(procs: ProcessGroup, tmp_path: Path) -> None:
    good, doomed = procs.engine(), procs.engine()
    config = round_robin([doomed.url, good.url], health={"interval_s": 60, "timeout_s": 0.5})
    url = procs.gateway(config, tmp_path)
    os.killpg(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait()
    for i in range(6):
        assert ask(url, f"after kill {i}")
    _, body = http_get(url + "/admin/endpoints")
    states = {e["url"]: e["state"] for e in json.loads(body)["endpoints"]}
    assert states[doomed.url] == "ejected"


def test_replica_answering_500(procs: ProcessGroup, tmp_path: Path) -> None:
    broken = procs.engine(extra=["--fail-fraction", "1"])
    good = procs.engine()
    url = procs.gateway(round_robin([broken.url, good.url]), tmp_path)
    for i in range(6):
        assert ask(url, f"retry on 500 {i}")
    assert good.metric("vllm:request_success_total") == 6


def test_replica_hanging_before_first_byte(procs: ProcessGroup, tmp_path: Path) -> None:
    stuck = procs.engine(extra=["--hang"])
    good = procs.engine()
    config = round_robin(
        [stuck.url, good.url],
        timeouts={"connect_s": 1.0, "first_byte_s": 0.5, "idle_s": 2.0, "total_s": 30.0},
    )
    url = procs.gateway(config, tmp_path)
    for i in range(4):
        assert ask(url, f"hang {i}")
    assert good.metric("vllm:request_success_total") == 4


def raw_stream(url: str, body: dict[str, object], headers: dict[str, str] | None = None) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    conn.request(
        "POST",
        "/v1/chat/completions",
        json.dumps(body),
        {"content-type": "application/json", **(headers or {})},
    )
    response = conn.getresponse()
    assert response.status == 200
    data = response.read()
    conn.close()
    return data


def test_replica_dying_mid_stream_ends_the_stream_well_formed(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    dying = procs.engine(extra=["--die-after-tokens", "5"], speed=2.0)
    url = procs.gateway(fleet_config([dying.url]), tmp_path)
    # no replica is left to resume on: the stream waits for one until the request's
    # queue deadline, then ends with an error event and [DONE]
    data = raw_stream(url, {
        "model": "tiny", "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 200, "stream": True,
    }, {"x-request-deadline-ms": "1500"})  # fmt: skip
    events = [e for e in data.decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    error = json.loads(events[-2].removeprefix("data: "))
    assert error["error"]["type"] == "server_error"
    for event in events[:-2]:
        json.loads(event.removeprefix("data: "))  # every relayed event is whole


def test_draining_sends_nothing_new_and_lets_streams_finish(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    first, second = procs.engine(speed=1.0), procs.engine(speed=1.0)
    url = procs.gateway(round_robin([first.url, second.url]), tmp_path)
    results: dict[str, bytes] = {}
    started = threading.Event()

    def long_stream() -> None:
        body = {"model": "tiny", "messages": [{"role": "user", "content": "long"}],
                "max_tokens": 150, "stream": True}  # fmt: skip
        started.set()
        results["stream"] = raw_stream(url, body)

    thread = threading.Thread(target=long_stream)
    thread.start()
    started.wait()
    # the first round-robin pick is the first endpoint: wait until it is streaming there
    wait_for(lambda: first.metric("vllm:num_requests_running") >= 1, what="stream on first")
    status, _ = http_post(url + "/admin/drain", json.dumps({"endpoint": first.url}).encode())
    assert status == 200
    for i in range(6):
        assert ask(url, f"while draining {i}")
    thread.join(timeout=60)
    assert results["stream"].endswith(b"data: [DONE]\n\n")
    assert b'"error"' not in results["stream"]
    assert first.metric("vllm:request_success_total") == 1
    assert second.metric("vllm:request_success_total") == 6


def test_unknown_port_in_config_is_not_fatal(procs: ProcessGroup, tmp_path: Path) -> None:
    good = procs.engine()
    dead_url = f"http://127.0.0.1:{free_port()}"
    url = procs.gateway(round_robin([dead_url, good.url]), tmp_path)
    for i in range(4):
        assert ask(url, f"dead in config {i}")
