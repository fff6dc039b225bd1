"""The optional response cache: deterministic answers served again without a replica."""

from __future__ import annotations

from pathlib import Path

import openai

from tests.support.processes import Engine, ProcessGroup, fleet_config, http_get
from tests.support.redis_server import RedisServer

MESSAGES = [{"role": "user", "content": "what is a prefix cache?"}]


def client(url: str, tenant: str = "team-a") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=url + "/v1", api_key="unused", max_retries=0, timeout=20,
        default_headers={"x-tenant": tenant},
    )  # fmt: skip


def served(engine: Engine) -> float:
    return engine.metric("vllm:request_success_total")


def gateway(procs: ProcessGroup, tmp: Path, engine: Engine, **cache: object) -> str:
    config = fleet_config([engine.url], response_cache={"enabled": True, **cache})
    return procs.gateway(config, tmp)


def test_deterministic_answers_are_served_from_the_cache(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    engine = procs.engine()
    url = gateway(procs, tmp_path, engine)
    api = client(url)
    first = api.chat.completions.with_raw_response.create(
        model="tiny", messages=MESSAGES, max_tokens=12, temperature=0
    )
    again = api.chat.completions.with_raw_response.create(
        model="tiny", messages=MESSAGES, max_tokens=12, temperature=0
    )
    assert "x-gpufleet-cache" not in first.headers and again.headers["x-gpufleet-cache"] == "hit"
    a, b = first.parse(), again.parse()
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.usage == b.usage and a.id != b.id
    assert served(engine) == 1
    # a streamed request with the same body replays the answer as a stream
    chunks = list(api.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=12, temperature=0, stream=True,
        stream_options={"include_usage": True},
    ))  # fmt: skip
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == a.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage == a.usage
    assert served(engine) == 1
    _, metrics = http_get(url + "/metrics")
    assert b'gpufleet_response_cache_total{model="tiny",result="hit"} 2.0' in metrics


def test_a_completed_stream_fills_the_cache(procs: ProcessGroup, tmp_path: Path) -> None:
    engine = procs.engine()
    url = gateway(procs, tmp_path, engine)
    api = client(url)
    streamed = list(api.completions.create(
        model="tiny", prompt="once upon a time", max_tokens=10, seed=7, stream=True
    ))  # fmt: skip
    text = "".join(c.choices[0].text for c in streamed if c.choices)
    whole = api.completions.create(model="tiny", prompt="once upon a time", max_tokens=10, seed=7)
    assert whole.choices[0].text == text and whole.choices[0].finish_reason == "length"
    assert whole.usage is not None and whole.usage.completion_tokens == 10
    assert served(engine) == 1


def test_only_deterministic_requests_of_the_same_tenant_hit(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    engine = procs.engine()
    url = gateway(procs, tmp_path, engine)
    for _ in range(2):  # sampled: never cached
        client(url).chat.completions.create(
            model="tiny", messages=MESSAGES, max_tokens=4, temperature=0.8
        )
    assert served(engine) == 2
    client(url, "team-a").chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=4, temperature=0
    )
    client(url, "team-b").chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=4, temperature=0
    )
    assert served(engine) == 4  # tenants never share entries


def test_redis_store_is_shared_by_gateways_and_a_dead_redis_is_a_miss(
    procs: ProcessGroup, tmp_path: Path, redis_server: RedisServer
) -> None:
    engine = procs.engine()
    first = gateway(procs, tmp_path, engine, store="redis", redis_url=redis_server.url)
    second = gateway(procs, tmp_path, engine, store="redis", redis_url=redis_server.url)
    ask = {"model": "tiny", "messages": MESSAGES, "max_tokens": 6, "temperature": 0}
    client(first).chat.completions.create(**ask)  # type: ignore[call-overload]
    hit = client(second).chat.completions.with_raw_response.create(**ask)  # type: ignore[call-overload]
    assert hit.headers["x-gpufleet-cache"] == "hit"
    assert served(engine) == 1
    redis_server.kill()
    answer = client(second).chat.completions.create(**{**ask, "max_tokens": 7})  # type: ignore[call-overload]
    assert answer.choices[0].finish_reason == "length"  # served by the replica, no error
    assert served(engine) == 2
