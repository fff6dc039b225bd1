"""Stream resumption: a stream cut by a dying replica continues on another one.

The client (the official `openai` client) must see one well-formed stream:
one id, no error event, the requested number of tokens, a finish reason and
usage that adds up.
"""

from __future__ import annotations

import json
from pathlib import Path

import openai

from gpufleet.engine.tokenizer import approx_num_tokens
from tests.support.processes import ProcessGroup, fleet_config


def round_robin(endpoints: list[str], **sections: object) -> dict[str, object]:
    return fleet_config(endpoints, scorers=[{"name": "round-robin-scorer"}], **sections)


def resumed_consistently(texts: list[str], die_after: int, max_tokens: int) -> bool:
    """Whether a stream of one token per chunk (``texts``) is the dying replica's tokens
    followed by exactly the rest of ``max_tokens``, as the gateway counts them: by
    re-tokenising the text streamed before the cut (the simulated engine's tokenizer
    takes ~4 bytes a token, so the count is not the number of chunks). The replica
    dies as it streams its ``die_after``-th token, which may or may not get out."""
    return any(
        len(texts) == cut + max_tokens - approx_num_tokens("".join(texts[:cut]))
        for cut in (die_after - 1, die_after)
    )


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30)


def test_chat_stream_cut_mid_way_is_resumed_on_another_replica(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    dying = procs.engine(extra=["--die-after-tokens", "7"], speed=2.0)
    good = procs.engine(speed=2.0)
    url = procs.gateway(round_robin([dying.url, good.url]), tmp_path)
    stream = client(url).chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "tell me a long story"}],
        max_tokens=30,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    ids = {chunk.id for chunk in chunks}
    assert len(ids) == 1
    token_chunks = [c for c in chunks if c.choices and c.choices[0].delta.role is None]
    roles = [c for c in chunks if c.choices and c.choices[0].delta.role is not None]
    assert len(roles) == 1  # the continuation's role chunk is not repeated
    texts = [c.choices[0].delta.content or "" for c in token_chunks]
    assert resumed_consistently(texts, die_after=7, max_tokens=30)
    assert token_chunks[-1].choices[0].finish_reason == "length"
    assert all(c.choices[0].finish_reason is None for c in token_chunks[:-1])
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 30
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # the same request, uninterrupted, counts the same prompt
    whole = client(url).chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "tell me a long story"}], max_tokens=3
    )
    assert whole.usage is not None
    assert abs(usage.prompt_tokens - whole.usage.prompt_tokens) <= 2
    assert good.metric("vllm:request_success_total") == 2


def test_completion_stream_resumed_without_usage_requested(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    dying = procs.engine(extra=["--die-after-tokens", "4"], speed=2.0)
    good = procs.engine(speed=2.0)
    url = procs.gateway(round_robin([dying.url, good.url]), tmp_path)
    stream = client(url).completions.create(
        model="tiny", prompt="once upon a time", max_tokens=12, stream=True
    )
    chunks = list(stream)
    assert len({chunk.id for chunk in chunks}) == 1
    assert all(chunk.usage is None for chunk in chunks)  # not asked, not sent
    texts = [chunk.choices[0].text for chunk in chunks]
    assert resumed_consistently(texts, die_after=4, max_tokens=12)
    assert chunks[-1].choices[0].finish_reason == "length"


def test_resumption_can_be_switched_off(procs: ProcessGroup, tmp_path: Path) -> None:
    dying = procs.engine(extra=["--die-after-tokens", "4"], speed=2.0)
    good = procs.engine(speed=2.0)
    config = round_robin([dying.url, good.url], retry={"resume_streams": False})
    url = procs.gateway(config, tmp_path)
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    body = {"model": "tiny", "prompt": "x", "max_tokens": 12, "stream": True}
    conn.request("POST", "/v1/completions", json.dumps(body), {"content-type": "application/json"})
    data = conn.getresponse().read().decode()
    events = [e for e in data.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2].removeprefix("data: "))["error"]["type"] == "server_error"
