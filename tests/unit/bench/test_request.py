"""Targets from --url, and the bytes of a request."""

from __future__ import annotations

import httptools
import orjson
import pytest

from gpufleet.bench.request import RequestEncoder, RequestOptions, Target, models_request
from gpufleet.workload.spec import Message, RequestSpec


@pytest.mark.parametrize(
    ("url", "endpoint", "path", "host_header"),
    [
        ("http://127.0.0.1:8080", "chat", "/v1/chat/completions", "127.0.0.1:8080"),
        ("http://h:8080/", "completions", "/v1/completions", "h:8080"),
        ("http://h/v1", "chat", "/v1/chat/completions", "h"),
        ("https://api.example.com/openai/v1/", "chat", "/openai/v1/chat/completions",
         "api.example.com"),
        ("http://h:1/x/v1/completions", "chat", "/x/v1/completions", "h:1"),
        ("http://[::1]:9/v1", "chat", "/v1/chat/completions", "[::1]:9"),
    ],
)  # fmt: skip
def test_target_paths(url: str, endpoint: str, path: str, host_header: str) -> None:
    target = Target.parse(url, endpoint)  # type: ignore[arg-type]
    assert target.path == path
    assert target.host_header == host_header
    assert target.base_path.endswith("/v1")


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://h/", "http://", "http://h:99999"])
def test_unusable_urls(url: str) -> None:
    with pytest.raises(ValueError, match="--url"):
        Target.parse(url, "chat")


class Parsed:
    def __init__(self, data: bytes):
        self.headers: dict[str, str] = {}
        self.body = b""
        self.url = b""
        self.complete = False
        parser = httptools.HttpRequestParser(self)
        parser.feed_data(data)
        self.method = parser.get_method()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


SPEC = RequestSpec(
    index=0, arrival_s=0.0,
    messages=(Message("system", "be brief"), Message("user", "héllo")),
    num_prompt_tokens=4, max_tokens=12, session_id="s0-u1-c0", tenant="acme", priority=7,
    request_class="batch",
)  # fmt: skip


def test_chat_request_bytes() -> None:
    target = Target.parse("http://h:8000", "chat")
    options = RequestOptions("chat", "m", headers=(("authorization", "Bearer k"),))
    parsed = Parsed(RequestEncoder(target, options).encode(SPEC))
    assert parsed.complete and parsed.method == b"POST" and parsed.url == b"/v1/chat/completions"
    assert parsed.headers["host"] == "h:8000"
    assert parsed.headers["x-session-id"] == "s0-u1-c0"
    assert parsed.headers["x-tenant"] == "acme"
    assert parsed.headers["x-priority"] == "7"
    assert parsed.headers["x-request-class"] == "batch"
    assert parsed.headers["authorization"] == "Bearer k"
    assert orjson.loads(parsed.body) == {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "héllo"}],
        "max_tokens": 12,
        "stream": True,
        "stream_options": {"include_usage": True},
    }  # fmt: skip


def test_completions_unstreamed_with_the_specs_own_model() -> None:
    target = Target.parse("http://h:8000/v1", "completions")
    options = RequestOptions("completions", "default", stream=False, ignore_eos=True)
    spec = RequestSpec(index=1, arrival_s=0.0, messages=(Message("user", "hi"),),
                       num_prompt_tokens=1, max_tokens=3, model="other")  # fmt: skip
    parsed = Parsed(RequestEncoder(target, options).encode(spec))
    assert parsed.url == b"/v1/completions"
    assert "x-session-id" not in parsed.headers and "x-tenant" not in parsed.headers
    assert orjson.loads(parsed.body) == {
        "model": "other", "prompt": "hi", "max_tokens": 3, "stream": False, "ignore_eos": True
    }  # fmt: skip


def test_models_request() -> None:
    parsed = Parsed(models_request(Target.parse("http://h/x/v1", "chat"), ()))
    assert parsed.method == b"GET" and parsed.url == b"/x/v1/models"
    assert parsed.headers["connection"] == "close"
