"""Measuring one response as its bytes arrive: content chunks, usage, [DONE], failure causes."""

from __future__ import annotations

import time
from array import array
from pathlib import Path

import pytest

from gpufleet.bench.exchange import Cause, Exchange, RequestResult

FIXTURES = Path("/work/shared/fixtures/vllm-0.32.0-cpu")


def event(payload: str) -> bytes:
    return b"data: " + payload.encode() + b"\n\n"


def chat_stream(pieces: list[str], usage: int | None = None, done: bool = True) -> bytes:
    body = event('{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}')
    for piece in pieces:
        body += event('{"choices":[{"index":0,"delta":{"content":"' + piece + '"}}]}')
    if usage is not None:
        body += event(f'{{"choices":[],"usage":{{"prompt_tokens":3,"completion_tokens":{usage}}}}}')
    return body + (b"data: [DONE]\n\n" if done else b"")


def measure(
    body: bytes, split: int = 0, status: int = 200, stream: bool = True, complete: bool = True
) -> tuple[RequestResult, array[float]]:
    results: list[RequestResult] = []
    itl: array[float] = array("d")
    exchange = Exchange(3, stream, 17, 0.0, time.perf_counter(), itl,
                        lambda _e, r: results.append(r))  # fmt: skip
    exchange.on_status(status)
    pieces = [body[i : i + split] for i in range(0, len(body), split)] if split else [body]
    for piece in pieces:
        exchange.on_body(piece)
    if complete:
        exchange.on_complete()
    else:
        exchange.fail(Cause.CONNECTION)
    assert len(results) == 1
    return results[0], itl


@pytest.mark.parametrize("split", [0, 1, 7, 64])
def test_stream_measured_whatever_the_read_boundaries(split: int) -> None:
    result, itl = measure(chat_stream(["a", "b", "c", "d"], usage=9), split=split)
    assert result.error is None
    assert result.num_chunks == 4, "the role-only first event is not a content chunk"
    assert result.num_output_tokens == 9 and result.usage_reported
    assert len(itl) == 3 and min(itl) >= 0
    assert result.ttft_s is not None and result.e2e_s is not None
    assert 0 < result.ttft_s <= result.e2e_s
    assert result.spec_index == 3 and result.num_prompt_tokens == 17


def test_without_usage_the_chunks_are_counted() -> None:
    result, _ = measure(chat_stream(["x", "y"]))
    assert result.num_output_tokens == 2 and not result.usage_reported


def test_empty_deltas_and_completions_text() -> None:
    result, _ = measure(chat_stream(["", "", "z"]))
    assert result.num_chunks == 1
    text = event('{"choices":[{"text":""}]}') + event('{"choices":[{"text":"hi"}]}') * 2
    result, _ = measure(text + b"data: [DONE]\n\n")
    assert result.num_chunks == 2


def test_done_without_a_space() -> None:
    result, _ = measure(chat_stream(["a"], done=False) + b"data:[DONE]\n\n")
    assert result.error is None


def test_crlf_event_boundaries() -> None:
    body = chat_stream(["a", "b"], usage=2).replace(b"\n", b"\r\n")
    result, _ = measure(body, split=5)
    assert result.error is None and result.num_chunks == 2 and result.num_output_tokens == 2


def test_real_vllm_stream_fixture() -> None:
    body = (FIXTURES / "chat_stream.sse").read_bytes()
    result, _ = measure(body, split=100)
    assert result.error is None
    assert result.num_output_tokens == 8, "usage.completion_tokens of the fixture"
    body = (FIXTURES / "completion_stream.sse").read_bytes()
    result, _ = measure(body)
    assert result.error is None and result.num_chunks >= 1


@pytest.mark.parametrize(
    ("body", "status", "cause"),
    [
        (chat_stream(["a"], done=False), 200, Cause.MALFORMED_STREAM),
        (b'{"choices": []}', 200, Cause.MALFORMED_STREAM),
        (chat_stream(["a"])[:-14] + event('{"error":{"message":"x"}}') + b"data: [DONE]\n\n",
         200, Cause.STREAM_ERROR),
        (b'{"error": {"message": "busy"}}', 503, "http_503"),
    ],
)  # fmt: skip
def test_failures_by_cause(body: bytes, status: int, cause: str) -> None:
    result, _ = measure(body, status=status)
    assert result.error == cause
    assert result.ttft_s is None and result.e2e_s is None and result.num_output_tokens == 0


def test_connection_lost_midstream_is_a_connection_error_but_after_done_it_is_fine() -> None:
    result, _ = measure(chat_stream(["a", "b"], done=False), complete=False)
    assert result.error == Cause.CONNECTION
    result, _ = measure(chat_stream(["a", "b"]), complete=False)
    assert result.error is None, "a stream delimited by the connection's end"
    result, _ = measure(b"busy", status=503, complete=False)
    assert result.error == "http_503", "the status, not the close, is the cause"


def test_unstreamed_response() -> None:
    body = b'{"choices":[{"message":{"content":"hi"}}],"usage":{"completion_tokens":5}}'
    result, itl = measure(body, stream=False, split=10)
    assert result.error is None and result.num_output_tokens == 5
    assert result.ttft_s == result.e2e_s and result.tpot_s is None and not itl
    result, _ = measure(b"<html>oops</html>", stream=False)
    assert result.error == Cause.MALFORMED_RESPONSE


def test_finish_reports_once() -> None:
    results: list[RequestResult] = []
    exchange = Exchange(0, True, 1, 0.0, time.perf_counter(), array("d"),
                        lambda _e, r: results.append(r))  # fmt: skip
    exchange.finish(Cause.TIMEOUT)
    exchange.fail(Cause.CONNECTION)
    exchange.on_complete()
    assert [r.error for r in results] == [Cause.TIMEOUT]
