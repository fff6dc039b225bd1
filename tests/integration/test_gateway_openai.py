"""The official openai client through the gateway, in front of two simulated engines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from tests.support.processes import ProcessGroup, fleet_config, http_get


@pytest.fixture
def gateway_url(procs: ProcessGroup, tmp_path: Path) -> str:
    engines = [procs.engine(), procs.engine()]
    return procs.gateway(fleet_config([e.url for e in engines]), tmp_path)


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def test_models_lists_served_names_and_aliases(gateway_url: str) -> None:
    ids = sorted(model.id for model in client(gateway_url).models.list())
    assert ids == ["tiny", "tiny-alias"]


def test_chat_non_streaming(gateway_url: str) -> None:
    response = client(gateway_url).chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hello there"}], max_tokens=8
    )
    assert response.object == "chat.completion"
    assert response.id.startswith("chatcmpl-")
    assert response.choices[0].finish_reason == "length"
    assert response.choices[0].message.content
    assert response.usage is not None and response.usage.completion_tokens == 8
    assert response.usage.prompt_tokens > 0


def test_chat_streaming_with_usage(gateway_url: str) -> None:
    stream = client(gateway_url).chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "stream please"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert len({c.id for c in chunks}) == 1
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_streaming_without_usage_hides_the_usage_chunk_but_counts_tokens(gateway_url: str) -> None:
    stream = client(gateway_url).chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "no usage"}], max_tokens=5, stream=True
    )
    chunks = list(stream)
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks), "the injected usage chunk must not reach the client"
    _, metrics = http_get(gateway_url + "/metrics")
    assert b"gpufleet_generation_tokens_total" in metrics
    generated = [
        float(line.rsplit(b" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(b"gpufleet_generation_tokens_total{")
    ]
    assert sum(generated) >= 5


def test_completions_streaming_and_not(gateway_url: str) -> None:
    api = client(gateway_url)
    plain = api.completions.create(model="tiny-alias", prompt="Once upon", max_tokens=4)
    assert plain.object == "text_completion" and plain.choices[0].text
    assert plain.usage is not None and plain.usage.completion_tokens == 4
    pieces = list(api.completions.create(model="tiny", prompt="Once", max_tokens=4, stream=True))
    assert "".join(p.choices[0].text for p in pieces if p.choices)


def test_async_client_concurrent_streams(gateway_url: str) -> None:
    async def run() -> list[str]:
        api = openai.AsyncOpenAI(base_url=gateway_url + "/v1", api_key="unused", max_retries=0)

        async def one(i: int) -> str:
            stream = await api.chat.completions.create(
                model="tiny",
                messages=[{"role": "user", "content": f"request {i}"}],
                max_tokens=10,
                stream=True,
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        try:
            return await asyncio.gather(*(one(i) for i in range(20)))
        finally:
            await api.close()

    texts = asyncio.run(run())
    assert len(texts) == 20 and all(texts)


def test_async_client_non_streaming(gateway_url: str) -> None:
    async def run() -> str:
        async with openai.AsyncOpenAI(
            base_url=gateway_url + "/v1", api_key="unused", max_retries=0
        ) as api:
            response = await api.completions.create(model="tiny", prompt="async", max_tokens=3)
            return response.choices[0].text

    assert asyncio.run(run())


def test_health_ready_metrics(gateway_url: str) -> None:
    assert http_get(gateway_url + "/health")[0] == 200
    status, body = http_get(gateway_url + "/ready")
    assert status == 200 and b'"tiny":true' in body
    status, body = http_get(gateway_url + "/metrics")
    assert status == 200 and b"gpufleet_requests_in_flight" in body
    healthy = [line for line in body.splitlines() if line.startswith(b"gpufleet_endpoint_healthy{")]
    assert len(healthy) == 2 and all(line.endswith(b" 1.0") for line in healthy), healthy
