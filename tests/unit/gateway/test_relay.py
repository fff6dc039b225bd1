"""The SSE relay over a fake responder: whole events only, usage taken, errors well-formed."""

from __future__ import annotations

import asyncio
import json

from gpufleet.errors import BackendUnavailable, StreamBroken
from gpufleet.gateway.relay import Outcome, RelaySink, usage_from_json


class FakeResponder:
    def __init__(self) -> None:
        self.head: bytes | None = None
        self.chunks: list[bytes] = []
        self.done = False
        self.disconnect_callbacks: list[object] = []
        self.write_paused = False

    @property
    def started(self) -> bool:
        return self.head is not None

    def start_stream(self, status: int, headers: bytes, first_chunk: bytes = b"") -> None:
        self.head = headers
        if first_chunk:
            self.chunks.append(first_chunk)

    def write_chunk(self, data: bytes) -> None:
        self.chunks.append(data)

    def end_stream(self, last_chunk: bytes = b"") -> None:
        if last_chunk:
            self.chunks.append(last_chunk)
        self.done = True

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


CHUNK = b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
USAGE = (
    b'data: {"id":"x","choices":[],"usage":{"prompt_tokens":17,"total_tokens":25,'
    b'"completion_tokens":8,"prompt_tokens_details":{"cached_tokens":16}}}\n\n'
)
DONE = b"data: [DONE]\n\n"


def run(coro_fn):  # type: ignore[no-untyped-def]
    return asyncio.run(coro_fn())


def test_events_split_across_reads_are_relayed_whole() -> None:
    async def go() -> tuple[FakeResponder, RelaySink]:
        responder = FakeResponder()
        sink = RelaySink(responder, b"", strip_usage=False, on_chunk=None)  # type: ignore[arg-type]
        sink.on_headers(200, {"content-type": "text/event-stream"})
        stream = CHUNK + CHUNK + USAGE + DONE
        for i in range(0, len(stream), 7):
            sink.on_body(stream[i : i + 7])
            for chunk in responder.chunks:
                assert chunk.endswith(b"\n\n"), "only whole events are forwarded"
        sink.on_complete()
        return responder, sink

    responder, sink = run(go)
    assert responder.body == CHUNK + CHUNK + USAGE + DONE
    assert (sink.usage.prompt_tokens, sink.usage.completion_tokens) == (17, 8)
    assert sink.usage.cached_tokens == 16


def test_usage_chunk_is_stripped_when_the_client_did_not_ask() -> None:
    async def go() -> tuple[FakeResponder, RelaySink]:
        responder = FakeResponder()
        sink = RelaySink(responder, b"", strip_usage=True, on_chunk=None)  # type: ignore[arg-type]
        sink.on_headers(200, {"content-type": "text/event-stream"})
        sink.on_body(CHUNK + USAGE + DONE)
        sink.on_complete()
        return responder, sink

    responder, sink = run(go)
    assert responder.body == CHUNK + DONE
    assert sink.usage.completion_tokens == 8


def test_failure_before_first_byte_is_retryable_after_it_is_an_error_event() -> None:
    async def go() -> tuple[object, FakeResponder, object]:
        early = RelaySink(FakeResponder(), b"", False, None)  # type: ignore[arg-type]
        early.on_error(BackendUnavailable("refused"))
        try:
            await early.result
        except BackendUnavailable as exc:
            first: object = exc
        responder = FakeResponder()
        late = RelaySink(responder, b"", False, None)  # type: ignore[arg-type]
        late.on_headers(200, {"content-type": "text/event-stream"})
        late.on_body(CHUNK)
        late.on_error(StreamBroken("reset"))
        return first, responder, await late.result

    first, responder, outcome = run(go)
    assert isinstance(first, BackendUnavailable)
    assert outcome == Outcome.BROKEN and responder.done
    events = responder.body.split(b"\n\n")
    assert events[-2] == b"data: [DONE]"
    assert json.loads(events[-3].removeprefix(b"data: "))["error"]["type"] == "server_error"


def test_usage_from_json() -> None:
    body = b'{"id":"c","usage":{"prompt_tokens":17,"total_tokens":25,"completion_tokens":8}}'
    usage = usage_from_json(body)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (17, 8, 0)
    assert usage_from_json(b'{"id":"c"}').prompt_tokens == 0
