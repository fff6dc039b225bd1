"""Relays one engine response to the client as it arrives.

Non-streaming responses are buffered (they are small and must be checked for
a retryable status before anything is sent). SSE responses are relayed event
by event, without buffering beyond one incomplete event: the first complete
event starts the client's response, later ones are written as they arrive.
Only whole events are ever forwarded, so a replica that dies mid-stream can
be followed by a well-formed error event and ``data: [DONE]``.

Resumable streams (``progress`` given, see gateway/resumption.py) have each
relayed event observed, and a replica failing mid-stream resolves ``result``
with ``Outcome.CUT`` without closing the client's stream: the proxy continues
it on another replica or closes it.

Backpressure: when the client's socket stops accepting writes, reading from
the replica pauses until it drains, so a slow reader cannot pin memory.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from gpufleet.api.server import Responder
from gpufleet.backends.connection import UpstreamConnection
from gpufleet.errors import GpufleetError
from gpufleet.gateway.resumption import StreamProgress

_PROMPT_TOKENS = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')
_CACHED_TOKENS = re.compile(rb'"cached_tokens"\s*:\s*(\d+)')
_DONE_EVENT = b"data: [DONE]\n\n"


class Outcome:
    OK = "ok"
    BROKEN = "stream_broken"
    CUT = "stream_cut"
    """A resumable stream lost its replica; the client's stream is still open."""
    CLIENT_GONE = "client_gone"


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """``usage.prompt_tokens_details.cached_tokens``: the engine's prefix-cache hit."""


NO_USAGE = Usage()


def usage_from_json(body: bytes) -> Usage:
    """The last ``usage`` object in ``body`` (a response or an SSE event); zeros if none."""
    start = body.rfind(b'"usage"')
    if start < 0:
        return NO_USAGE
    prompt = _PROMPT_TOKENS.search(body, start)
    completion = _COMPLETION_TOKENS.search(body, start)
    cached = _CACHED_TOKENS.search(body, start)
    return Usage(
        int(prompt.group(1)) if prompt else 0,
        int(completion.group(1)) if completion else 0,
        int(cached.group(1)) if cached else 0,
    )


def end_with_error(responder: Responder, message: str, code: int = 502) -> None:
    """Close a started stream well-formed: an OpenAI-style error event, then ``[DONE]``."""
    event = orjson.dumps(
        {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    )
    responder.end_stream(b"data: " + event + b"\n\n" + _DONE_EVENT)


def end_stream_done(responder: Responder, last_events: bytes = b"") -> None:
    """Close a started stream normally: optional final events, then ``[DONE]``."""
    responder.end_stream(last_events + _DONE_EVENT)


class RelaySink:
    """A ``BodySink`` bridging one upstream exchange to the client's ``Responder``.

    ``result`` resolves when the exchange ends: with the buffered
    ``(status, headers, body)`` for non-SSE responses, with an ``Outcome``
    once a stream has started, or with the exception for a failure before
    anything reached the client (the caller may retry).
    """

    __slots__ = (
        "_body",
        "_carry",
        "_on_chunk",
        "_responder",
        "_stream_headers",
        "_streaming",
        "_strip_usage",
        "conn",
        "first_chunk_at",
        "headers",
        "last_chunk_at",
        "progress",
        "result",
        "status",
        "usage",
    )

    def __init__(
        self,
        responder: Responder,
        stream_headers: bytes,
        strip_usage: bool,
        on_chunk: Callable[[float, float], None] | None,
        progress: StreamProgress | None = None,
    ):
        self._responder = responder
        self._stream_headers = stream_headers
        self._strip_usage = strip_usage
        self._on_chunk = on_chunk
        self.conn: UpstreamConnection | None = None
        self.result: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.status = 0
        self.headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._streaming = False
        self._carry = b""
        self.first_chunk_at = 0.0
        self.last_chunk_at = 0.0
        self.usage = NO_USAGE
        self.progress = progress

    # BodySink ------------------------------------------------------------------------
    def on_headers(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers
        self._streaming = status == 200 and headers.get("content-type", "").startswith(
            "text/event-stream"
        )

    def on_body(self, chunk: bytes) -> None:
        if not self._streaming:
            self._body.append(chunk)
            return
        now = time.monotonic()
        buffer = self._carry + chunk if self._carry else chunk
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self._carry = buffer
            return
        cut += 2
        events = buffer[:cut]
        self._carry = buffer[cut:]
        if self.progress is not None:
            events = self.progress.relay(events)
        if b'"usage"' in events:
            events = self._take_usage(events)
        if self.first_chunk_at == 0.0:
            self.first_chunk_at = now
        elif self._on_chunk is not None:
            self._on_chunk(now - self.last_chunk_at, now)
        self.last_chunk_at = now
        if not events:
            return
        responder = self._responder
        if responder.started:
            responder.write_chunk(events)
        else:
            responder.start_stream(200, self._stream_headers, events)
        if responder.write_paused and self.conn is not None:
            conn = self.conn
            conn.pause_reading()
            responder.on_resume(conn.resume_reading)

    def on_complete(self) -> None:
        if self.result.done():
            return
        if not self._streaming:
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            self.result.set_result((self.status, self.headers, body))
            return
        responder = self._responder
        tail = self._carry
        if tail and b'"usage"' in tail:
            tail = self._take_usage(tail)
        if responder.started:
            responder.end_stream(tail)
        else:
            responder.start_stream(200, self._stream_headers, tail)
            responder.end_stream()
        self.result.set_result(Outcome.OK)

    def on_error(self, error: GpufleetError) -> None:
        if self.result.done():
            return
        responder = self._responder
        if not responder.started:
            self.result.set_exception(error)
            return
        if self.progress is not None:
            self.result.set_result(Outcome.CUT)  # the proxy resumes or closes the stream
            return
        # Bytes already reached the client: close the stream well-formed.
        end_with_error(responder, f"the replica failed mid-stream: {error}")
        self.result.set_result(Outcome.BROKEN)

    # client side ---------------------------------------------------------------
    def client_gone(self) -> None:
        """The client disconnected: abort the upstream request so the engine frees it."""
        if self.conn is not None:
            self.conn.abort()
        if not self.result.done():
            self.result.set_result(Outcome.CLIENT_GONE)

    # usage ------------------------------------------------------------------------
    def _take_usage(self, events: bytes) -> bytes:
        """Record the usage of a final usage event; drop that event if the client
        did not ask for usage (the gateway asked on its behalf)."""
        index = events.rfind(b'"usage":{')
        if index < 0:
            index = events.rfind(b'"usage": {')
            if index < 0:
                return events
        start = events.rfind(b"data:", 0, index)
        end = events.find(b"\n\n", index)
        if start < 0 or end < 0:
            return events
        event = events[start:end]
        usage = usage_from_json(event)
        if usage.prompt_tokens or usage.completion_tokens:
            self.usage = usage
        if self._strip_usage and b'"choices":[]' in event.replace(b" ", b""):
            return events[:start] + events[end + 2 :]
        return events
