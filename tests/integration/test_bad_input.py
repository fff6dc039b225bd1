"""Every bad input gets its 4xx in OpenAI's error shape — never a 500."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ProcessGroup, fleet_config

CHAT = "/v1/chat/completions"
OK_MESSAGES = [{"role": "user", "content": "hi"}]


def j(value: object) -> bytes:
    return json.dumps(value).encode()


CASES: list[tuple[str, str, str, bytes, int, str | None]] = [
    # (case id, method, path, body, status, param)
    ("invalid-json", "POST", CHAT, b'{"model": "tiny",', 400, None),
    ("json-array", "POST", CHAT, b"[1, 2]", 400, None),
    ("empty-body", "POST", CHAT, b"", 400, None),
    ("missing-model", "POST", CHAT, j({"messages": OK_MESSAGES}), 400, "model"),
    ("model-not-string", "POST", CHAT, j({"model": 7, "messages": OK_MESSAGES}), 400, "model"),
    ("unknown-model", "POST", CHAT, j({"model": "nope", "messages": OK_MESSAGES}), 404, "model"),
    ("missing-messages", "POST", CHAT, j({"model": "tiny"}), 400, "messages"),
    ("messages-not-list", "POST", CHAT, j({"model": "tiny", "messages": "hi"}), 400, "messages"),
    ("messages-empty", "POST", CHAT, j({"model": "tiny", "messages": []}), 400, "messages"),
    ("message-not-object", "POST", CHAT, j({"model": "tiny", "messages": ["hi"]}), 400,
     "messages[0]"),
    ("message-without-role", "POST", CHAT, j({"model": "tiny", "messages": [{"content": "x"}]}),
     400, "messages[0].role"),
    ("stream-not-bool", "POST", CHAT, j({"model": "tiny", "messages": OK_MESSAGES,
                                         "stream": "yes"}), 400, "stream"),
    ("max-tokens-negative", "POST", CHAT, j({"model": "tiny", "messages": OK_MESSAGES,
                                             "max_tokens": -1}), 400, "max_tokens"),
    ("max-tokens-string", "POST", CHAT, j({"model": "tiny", "messages": OK_MESSAGES,
                                           "max_tokens": "9"}), 400, "max_tokens"),
    ("n-zero", "POST", CHAT, j({"model": "tiny", "messages": OK_MESSAGES, "n": 0}), 400, "n"),
    ("temperature-too-high", "POST", CHAT, j({"model": "tiny", "messages": OK_MESSAGES,
                                              "temperature": 5}), 400, "temperature"),
    ("top-p-negative", "POST", CHAT, j({"model": "tiny", "messages": OK_MESSAGES,
                                        "top_p": -0.5}), 400, "top_p"),
    ("stream-options-not-object", "POST", CHAT, j({"model": "tiny", "messages": OK_MESSAGES,
                                                   "stream_options": 1}), 400, "stream_options"),
    ("stop-not-strings", "POST", CHAT, j({"model": "tiny", "messages": OK_MESSAGES,
                                          "stop": [1, 2]}), 400, "stop"),
    ("completion-without-prompt", "POST", "/v1/completions", j({"model": "tiny"}), 400, "prompt"),
    ("completion-prompt-object", "POST", "/v1/completions", j({"model": "tiny",
                                                               "prompt": {"a": 1}}), 400, "prompt"),
    ("embeddings-without-input", "POST", "/v1/embeddings", j({"model": "tiny"}), 400, "input"),
    ("deep-nesting", "POST", CHAT, b'{"model":"tiny","messages":' + b"[" * 200 + b"]" * 200 + b"}",
     400, None),
    ("invalid-utf8", "POST", CHAT, b'{"model": "tiny\xff\xfe", "messages": []}', 400, None),
    ("body-too-large", "POST", CHAT, b'{"model":"tiny","pad":"' + b"x" * 70_000 + b'"}', 413, None),
    ("wrong-method", "GET", CHAT, b"", 405, None),
    ("unknown-route", "POST", "/v1/nothing-here", j({}), 404, None),
    ("engine-rejects-max-tokens", "POST", CHAT, j({"model": "tiny", "messages": OK_MESSAGES,
                                                   "max_tokens": 100_000}), 400, "max_tokens"),
]  # fmt: skip


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    group = ProcessGroup()
    try:
        engine = group.engine()
        config = fleet_config([engine.url])
        config["gateway"] = {"access_log": "off", "max_body_bytes": 65536}
        url = group.gateway(config, Path(tmp_path_factory.mktemp("bad-input")))
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)
    finally:
        group.close()


@pytest.mark.parametrize(("method", "path", "body", "status", "param"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input_gets_openai_error(
    gateway: tuple[str, int], method: str, path: str, body: bytes, status: int, param: str | None
) -> None:
    conn = http.client.HTTPConnection(*gateway, timeout=10)
    conn.request(method, path, body, {"content-type": "application/json"})
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    assert response.status == status, payload
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param


def test_gateway_still_serves_after_bad_inputs(gateway: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*gateway, timeout=10)
    conn.request("POST", CHAT, j({"model": "tiny", "messages": OK_MESSAGES, "max_tokens": 2}))
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["usage"]["completion_tokens"] == 2
