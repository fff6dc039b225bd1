"""Hostile input, table-driven over raw sockets, plus schemathesis over /openapi.json and
hypothesis over ``parse_body``: every answer is a 4xx in OpenAI's error shape (never a
5xx, never a crash or hang) and no key material appears in any answer or in the log."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.api.validation import parse_body
from gpufleet.errors import InvalidRequest
from gpufleet.tenancy.keys import hash_key
from tests.integration.tenancy_helpers import stop_and_read
from tests.support.processes import ProcessGroup, fleet_config

KEY = "sk-hostile-Vb7x2Qm9Lp4Kt1Zr"
ADMIN = "adm-hostile-Hq3w8Ej5Ns0Yc6"
CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "hi"}]
MAX_BODY = 1024 * 1024


def j(value: object) -> bytes:
    return json.dumps(value).encode()


def ok(**extra: object) -> bytes:
    return j({"model": "tiny", "messages": MSG, "max_tokens": 1, **extra})


def req(
    body: bytes = b"",
    *,
    method: str = "POST",
    path: str = CHAT,
    key: str | None = KEY,
    headers: tuple[str, ...] = (),
    length: bool = True,
) -> bytes:
    """A raw HTTP/1.1 request; ``headers`` are literal lines (so they may be malformed)."""
    lines = [f"{method} {path} HTTP/1.1", "host: gw", "content-type: application/json"]
    if key is not None:
        lines.append(f"authorization: Bearer {key}")
    if length:
        lines.append(f"content-length: {len(body)}")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def raw(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode("latin-1") + body


D4 = '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":1}'
CL_TE = raw(
    f"POST {CHAT} HTTP/1.1\nhost: gw\nauthorization: Bearer {KEY}\ncontent-length: 4\n"
    "transfer-encoding: chunked\n\n",
    b"0\r\n\r\nGET /admin/usage HTTP/1.1\r\nhost: gw\r\n\r\n",
)
FOUR_XX = frozenset(range(400, 500))

CASES: list[tuple[str, bytes, frozenset[int]]] = [
    # malformed and truncated JSON
    ("truncated-json", req(b'{"model": "tiny", "messages": [{"role"'), frozenset({400})),
    ("trailing-garbage", req(ok() + b"}}"), frozenset({400})),
    ("json-array", req(b"[]"), frozenset({400})),
    ("json-string", req(b'"hello"'), frozenset({400})),
    ("json-null", req(b"null"), frozenset({400})),
    ("nan-literal", req(b'{"model":"tiny","messages":[],"temperature":NaN}'), frozenset({400})),
    ("single-quotes", req(b"{'model': 'tiny'}"), frozenset({400})),
    ("bom-prefix", req(b"\xef\xbb\xbf" + ok()), frozenset({400})),
    ("empty-body", req(b""), frozenset({400})),
    ("whitespace-body", req(b"   \n\t "), frozenset({400})),
    # wrong types
    ("model-list", req(j({"model": ["tiny"], "messages": MSG})), frozenset({400})),
    ("model-empty", req(j({"model": "", "messages": MSG})), frozenset({400})),
    ("messages-object", req(j({"model": "tiny", "messages": {"role": "user"}})), frozenset({400})),
    ("content-number", req(j({"model": "tiny", "messages": [{"role": "user", "content": 5}]})),
     frozenset({400})),
    ("role-null", req(j({"model": "tiny", "messages": [{"role": None}]})), frozenset({400})),
    ("stream-string", req(ok(stream="true")), frozenset({400})),
    ("max-tokens-float", req(ok(max_tokens=1.5)), frozenset({400})),
    ("max-tokens-bool", req(ok(max_tokens=True)), frozenset({400})),
    ("user-object", req(ok(user={"id": 1})), frozenset({400})),
    ("stop-nested", req(ok(stop=[["a"]])), frozenset({400})),
    ("prompt-mixed", req(j({"model": "tiny", "prompt": ["a", 1]}), path="/v1/completions"),
     frozenset({400})),
    ("input-dict", req(j({"model": "tiny", "input": {"a": 1}}), path="/v1/embeddings"),
     frozenset({400})),
    # huge and negative numbers
    ("max-tokens-huge", req(ok(max_tokens=10**30)), frozenset({400})),
    ("max-tokens-2e63", req(ok(max_tokens=2**63)), frozenset({400})),
    ("max-tokens-negative", req(ok(max_tokens=-5)), frozenset({400})),
    ("n-huge", req(ok(n=10**9)), frozenset({400})),
    ("temperature-1e308", req(ok(temperature=1e308)), frozenset({400})),
    ("temperature-overflow", req(ok()[:-1] + b',"temperature":1e999}'), frozenset({400})),
    ("top-p-negative-zero-ish", req(ok(top_p=-1e-300)), frozenset({400})),
    ("token-ids-huge", req(j({"model": "tiny", "prompt": [10**40]}), path="/v1/completions"),
     frozenset({400})),
    # deep nesting, big bodies, encodings
    ("deep-arrays", req(b'{"model":"tiny","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
     frozenset({400})),
    ("deep-objects", req(b'{"model":"tiny","x":' + b'{"a":' * 500 + b"1" + b"}" * 500 + b"}"),
     frozenset({400})),
    ("body-10mb", req(b'{"model":"tiny","pad":"' + b"x" * (10 * 1024 * 1024) + b'"}'),
     frozenset({413})),
    ("content-length-lies-huge", req(ok(), length=False, headers=("content-length: 99999999999",)),
     frozenset({413})),
    ("invalid-utf8", req(b'{"model":"tiny\xc3\x28","messages":[]}'), frozenset({400})),
    ("lone-surrogate", req(b'{"model":"tiny\\ud800","messages":[{"role":"user"}]}'),
     frozenset({400, 404})),
    ("nul-in-model", req(j({"model": "tiny\x00", "messages": MSG})), frozenset({404})),
    # unknown fields: forwarded to the engine (vLLM extras) or refused by it, never a 5xx
    ("unknown-field", req(ok(frobnicate={"deep": [1, 2, 3]})), frozenset({200})),
    ("unknown-field-unkeyed", req(ok(frobnicate=1), key=None), frozenset({401})),
    # header smuggling
    ("duplicate-content-length", req(ok(), headers=("content-length: 3",)), frozenset({400})),
    ("cl-and-te", CL_TE, frozenset({400})),
    ("te-chunked-bad-size", raw(f"POST {CHAT} HTTP/1.1\nhost: gw\nauthorization: Bearer {KEY}\n"
                               "transfer-encoding: chunked\n\n", b"zz\r\nabc\r\n0\r\n\r\n"),
     frozenset({400})),
    ("te-chunked-overflow", raw(f"POST {CHAT} HTTP/1.1\nhost: gw\nauthorization: Bearer {KEY}\n"
                                "transfer-encoding: chunked\n\n", b"fffffffffffffffff\r\nab\r\n"),
     frozenset({400, 413})),
    ("te-identity-garbage", raw(f"POST {CHAT} HTTP/1.1\nhost: gw\nauthorization: Bearer {KEY}\n"
                                "transfer-encoding: gzip, chunked, x\n\n", b"0\r\n\r\n"),
     frozenset({400})),
    ("obs-fold", req(ok(), headers=("x-request-class: standard", " interactive")),
     frozenset({400})),
    ("space-before-colon", req(ok(), headers=("content-length : 5",)), frozenset({400})),
    ("bare-lf-header", req(ok(), headers=("x-a: 1\nx-b: 2",)), frozenset({400})),
    ("crlf-in-request-id", req(ok(), headers=("x-request-id: a\r\nx-injected: 1",)),
     frozenset({200})),
    ("nul-in-header", req(ok(), headers=("x-request-id: a\x00b",)), frozenset({400})),
    ("huge-header", req(ok(), headers=("x-pad: " + "a" * 70_000,)), frozenset({431})),
    ("many-headers", req(ok(), headers=tuple(f"x-h{i}: {'v' * 60}" for i in range(2000))),
     frozenset({431})),
    ("bad-priority", req(ok(), headers=("x-priority: 99999999999999999999",)), frozenset({400})),
    ("bad-deadline", req(ok(), headers=("x-request-deadline-ms: -1",)), frozenset({400})),
    ("bad-class", req(ok(), headers=("x-request-class: ../../etc",)), frozenset({400})),
    ("http-0.9", b"GET /health\r\n\r\n", frozenset({200, 400})),
    ("bad-method", req(ok(), method="BREW"), frozenset({400, 405})),
    ("absolute-uri", req(ok(), path="http://evil.example/v1/chat/completions"),
     frozenset({200, 404})),
    ("path-traversal", req(b"", method="GET", path="/admin/../v1/models"), frozenset({401, 404})),
    # bad API keys
    ("no-key", req(ok(), key=None), frozenset({401})),
    ("wrong-key", req(ok(), key="sk-nope"), frozenset({401})),
    ("basic-auth", req(ok(), key=None, headers=("authorization: Basic dXNlcjpwYXNz",)),
     frozenset({401})),
    ("key-with-crlf", req(ok(), key=None, headers=(f"authorization: Bearer {KEY}\r\nx: y",)),
     frozenset({200})),
    ("key-huge", req(ok(), key="k" * 60_000), frozenset({401})),
    ("key-latin1", req(ok(), key=None, headers=("authorization: Bearer \xff\xfe\xfd",)),
     frozenset({401})),
    ("key-twice", req(ok(), key="sk-nope", headers=(f"authorization: Bearer {KEY}x",)),
     frozenset({401})),
    ("admin-with-tenant-key", req(b"", method="GET", path="/admin/usage"), frozenset({401})),
    ("admin-no-key", req(b"", method="GET", path="/admin/endpoints", key=None),
     frozenset({401})),
]  # fmt: skip


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, ProcessGroup]]:
    group = ProcessGroup()
    try:
        engine = group.engine(speed=1000)
        tenancy = {
            "tenants": [{"name": "t"}],
            "keys": [{"hash": hash_key(KEY), "tenant": "t"}],
            "admin_key_hash": hash_key(ADMIN),
        }
        config = fleet_config([engine.url], tenancy=tenancy)
        config["gateway"] = {"access_log": "-", "max_body_bytes": MAX_BODY}
        url = group.gateway(config, Path(tmp_path_factory.mktemp("hostile")))
        yield int(url.rsplit(":", 1)[1]), group
    finally:
        group.close()


def exchange(port: int, data: bytes, timeout_s: float = 10.0) -> tuple[int, bytes]:
    """Send raw bytes, read one response; (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        # the server may answer early (413/431) and close: then read its answer
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 "), received[:200]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(head.split()[1]), body[:length]


def assert_openai_error(body: bytes) -> None:
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize(("data", "allowed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_request(
    gateway: tuple[int, ProcessGroup], data: bytes, allowed: frozenset[int]
) -> None:
    status, body = exchange(gateway[0], data)
    assert status in allowed, (status, body[:300])
    assert status < 500
    if status >= 400:
        assert_openai_error(body)
    assert KEY.encode() not in body and ADMIN.encode() not in body


def test_smuggled_request_is_not_served(gateway: tuple[int, ProcessGroup]) -> None:
    """After CL+TE is refused the connection is closed: the tail is never a second request."""
    with socket.create_connection(("127.0.0.1", gateway[0]), timeout=10) as sock:
        sock.sendall(CL_TE)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.count(b"HTTP/1.1 ") == 1 and received.startswith(b"HTTP/1.1 400")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["model", "messages", "prompt", "input", "role", "content", "max_tokens",
                         "n", "stop", "stream", "stream_options", "include_usage", "user",
                         "temperature", "top_p", "text"]) | st.text(max_size=5),
        inner, max_size=6),
    max_leaves=30,
).map(lambda v: json.dumps(v).encode())  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.binary(max_size=512) | JSON_VALUES, st.sampled_from(["chat", "completions", "embeddings"])
)
def test_parse_body_only_raises_invalid_request(raw_body: bytes, kind: str) -> None:
    try:
        parse_body(kind, raw_body)
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message


@pytest.fixture(scope="module")
def operations(gateway: tuple[int, ProcessGroup]) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{gateway[0]}/openapi.json")
    return [op.ok() for op in schema.get_all_operations()]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), key=st.sampled_from([KEY, ADMIN, "sk-wrong", None]))
def test_schemathesis_never_5xx(
    operations: list[Any], data: st.DataObject, key: str | None
) -> None:
    """Cases generated by schemathesis from the gateway's own /openapi.json (positive and
    negative), sent with a valid, admin, wrong or no key. (Driven through hypothesis
    directly: schemathesis's pytest plugin fails under pytest 9.)"""
    operation = data.draw(st.sampled_from(operations))
    case = data.draw(operation.as_strategy())
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    response = case.call(headers=headers, timeout=10)
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400 and response.content:
        assert_openai_error(response.content)
    for secret in (KEY, ADMIN):
        assert secret not in response.text and secret not in str(response.headers)


def test_zz_no_key_material_in_log(gateway: tuple[int, ProcessGroup]) -> None:
    """Runs last: stops the gateway and reads all it printed."""
    log = stop_and_read(gateway[1], gateway[1].processes[-1])
    assert "requires API keys" in log
    assert KEY not in log and ADMIN not in log
    assert "Traceback" not in log and "unhandled error" not in log
