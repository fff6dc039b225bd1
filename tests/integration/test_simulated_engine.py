"""The simulated engine speaks vLLM's API: the official openai client against it directly."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpufleet.backends.engine_metrics import METRIC_NAMES, parse_metrics
from tests.support.processes import (
    STARTUP_TIMEOUT_S,
    Engine,
    ProcessGroup,
    free_port,
    http_get,
    http_post,
    wait_until_ok,
)

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures" / "vllm-0.32.0-cpu"


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    group = ProcessGroup()
    try:
        yield group.engine(served_name="tiny", speed=50.0, extra=["--max-model-len", "4096"])
    finally:
        group.close()


@pytest.fixture
def api(engine: Engine) -> openai.OpenAI:
    return openai.OpenAI(base_url=engine.url + "/v1", api_key="unused", max_retries=0)


def test_models(api: openai.OpenAI) -> None:
    models = api.models.list().data
    assert [m.id for m in models] == ["tiny"]
    assert models[0].model_extra and models[0].model_extra["max_model_len"] == 4096


def test_chat_and_completion_honour_max_tokens_n_and_seed(api: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Tell me about GPUs"}]
    reply = api.chat.completions.create(model="tiny", messages=messages, max_tokens=7, n=2, seed=5)
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.usage is not None and reply.usage.completion_tokens == 14
    again = api.chat.completions.create(model="tiny", messages=messages, max_tokens=7, n=2, seed=5)
    assert [c.message.content for c in again.choices] == [c.message.content for c in reply.choices]
    text = api.completions.create(model="tiny", prompt="The fleet", max_tokens=3)
    assert text.choices[0].finish_reason == "length" and text.usage.completion_tokens == 3


def test_stop_strings_end_generation_early(api: openai.OpenAI) -> None:
    full = api.completions.create(model="tiny", prompt="abc", max_tokens=40, seed=11)
    words = full.choices[0].text.split(" ")
    stop = " " + words[5]
    cut = api.completions.create(model="tiny", prompt="abc", max_tokens=40, seed=11, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert stop not in cut.choices[0].text
    assert full.choices[0].text.startswith(cut.choices[0].text)


def test_streaming_emits_one_chunk_per_step_and_usage(api: openai.OpenAI) -> None:
    chunks = list(
        api.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "stream"}],
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 5
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


def test_repeated_prompt_reports_cached_tokens(api: openai.OpenAI) -> None:
    prompt = "A long shared system prompt about fleets and caches. " * 20
    first = api.completions.create(model="tiny", prompt=prompt, max_tokens=2)
    second = api.completions.create(model="tiny", prompt=prompt, max_tokens=2)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached > 0.8 * second.usage.prompt_tokens
    assert cached % 16 == 0, "only full blocks are cached"


def test_vllm_style_errors(engine: Engine) -> None:
    status, body = http_post(engine.url + "/v1/chat/completions",
                             json.dumps({"model": "nope", "messages": []}).encode())  # fmt: skip
    assert status == 404
    expected = json.loads((FIXTURES / "err_unknown_model.txt").read_text().splitlines()[0])
    assert set(json.loads(body)["error"]) == set(expected["error"])
    assert json.loads(body)["error"]["type"] == "NotFoundError"
    status, body = http_post(
        engine.url + "/v1/chat/completions",
        json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "x"}],
                    "max_tokens": 100000}).encode(),
    )  # fmt: skip
    assert status == 400
    assert json.loads(body)["error"]["param"] == "max_tokens"
    assert "cannot be greater than max_model_len=4096" in json.loads(body)["error"]["message"]


def test_metrics_parse_and_carry_every_name_routing_uses(engine: Engine) -> None:
    status, body = http_get(engine.url + "/metrics")
    assert status == 200
    samples = {
        sample.name
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    for signal, names in METRIC_NAMES["vllm"].items():
        assert names[0] in samples, f"{signal}: {names[0]} missing"
    real = {
        sample.name
        for family in text_string_to_metric_families((FIXTURES / "metrics_after.prom").read_text())
        for sample in family.samples
        if sample.name.startswith("vllm:")
    }
    # vLLM exports lora_requests_info only when LoRA is enabled (the fixture server had none)
    routing_names = {names[0] for names in METRIC_NAMES["vllm"].values()}
    assert routing_names - {"vllm:lora_requests_info"} <= real, (
        "the table's names are those real vLLM 0.32 exports"
    )
    parsed = parse_metrics(body)
    assert parsed is not None and parsed.kind == "vllm" and parsed.block_size == 16
    assert parsed.num_gpu_blocks and parsed.num_gpu_blocks > 1000


def test_health_and_version(engine: Engine) -> None:
    assert http_get(engine.url + "/health")[0] == 200
    status, body = http_get(engine.url + "/version")
    assert status == 200 and json.loads(body)["version"].startswith("0.32.0")


def test_a_stream_is_written_with_its_head_and_end_merged_into_the_token_writes(
    engine: Engine,
) -> None:
    """HTTP chunks as written: the role event rides with the first token, and the finishing
    token with the usage event and [DONE] (one socket write per delivery)."""
    body = json.dumps({
        "model": "tiny", "messages": [{"role": "user", "content": "count"}], "max_tokens": 3,
        "stream": True, "stream_options": {"include_usage": True},
    }).encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", engine.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
            b"\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    chunks = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        chunks.append(rest[:size])
        rest = rest[size + 2 :]
    assert chunks[-1] == b""  # the terminating chunk
    events = [[e for e in c.split(b"\n\n") if e] for c in chunks[:-1]]
    deltas = [json.loads(e[len(b"data: ") :]) for e in events[0]]
    assert deltas[0]["choices"][0]["delta"].get("role") == "assistant"
    assert deltas[1]["choices"][0]["delta"].get("content"), "the first token, same chunk"
    last = events[-1]
    assert last[-1] == b"data: [DONE]"
    usage = json.loads(last[-2][len(b"data: ") :])
    finishing = json.loads(last[-3][len(b"data: ") :])
    assert usage["usage"]["completion_tokens"] == 3 and not usage["choices"]
    assert finishing["choices"][0]["finish_reason"] == "length"


def test_one_process_serves_an_independent_replica_on_each_port() -> None:
    group = ProcessGroup()
    try:
        first, second = free_port(), free_port()
        process = group.spawn([
            "engine", "--model", "llama-3-8b", "--gpu", "h100", "--speed", "50",
            "--served-model-name", "tiny", "--port", f"{first},{second}",
        ])  # fmt: skip
        urls = [f"http://127.0.0.1:{port}" for port in (first, second)]
        for url in urls:
            wait_until_ok(url + "/v1/models", process, STARTUP_TIMEOUT_S, group.logs[process.pid])
        engines = [Engine(port, process, "tiny") for port in (first, second)]
        client = openai.OpenAI(base_url=urls[0] + "/v1", api_key="unused", max_retries=0)
        for _ in range(3):
            reply = client.completions.create(
                model="tiny", prompt="one replica " * 40, max_tokens=5
            )
            assert reply.usage is not None and reply.usage.completion_tokens == 5
        # each port is its own engine: the requests, tokens and prefix cache of the first
        # replica are not the second's
        assert engines[0].metric("vllm:request_success_total") == 3
        assert engines[1].metric("vllm:request_success_total") == 0
        assert engines[0].metric("vllm:prefix_cache_hits_total") > 0
        assert engines[1].metric("vllm:prefix_cache_queries_total") == 0
        output = group.output(process)
        assert f"listening on {urls[0]}" in output and f"listening on {urls[1]}" in output
    finally:
        group.close()


def test_a_bad_port_list_is_refused_before_anything_starts() -> None:
    group = ProcessGroup()
    try:
        for ports, message in (("80x1", "expected ports"), ("9001,9001", "a port is repeated"),
                               ("70000", "0 to 65535")):  # fmt: skip
            process = group.spawn(["engine", "--model", "llama-3-8b", "--gpu", "h100",
                                   "--port", ports])  # fmt: skip
            assert process.wait(timeout=30) == 2
            assert message in group.output(process)
    finally:
        group.close()
