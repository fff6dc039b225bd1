"""One request's measurement, fed with its response bytes as they arrive.

Streaming responses are scanned, not parsed: the body is cut at the last SSE
event boundary (a blank line) and only complete events are looked at, with
byte searches and two regular expressions run over whole reads at C speed:

- a *content chunk* is an event whose delta carries non-empty generated text
  (``"content"``, ``"text"``, ``"reasoning_content"`` or ``"reasoning"``
  followed by a non-empty string); the role-only first event and empty deltas
  do not count;
- TTFT is the time from dispatch to the read that brought the first content
  chunk; every later content chunk adds one inter-token gap (ITL) — chunks
  that arrived in the same read add gaps of 0;
- the output token count is ``usage.completion_tokens`` of the last event that
  has one (requested with ``stream_options.include_usage``), else the number
  of content chunks;
- a stream must end with ``data: [DONE]``; a ``data: {"error": ...}`` event
  makes the request fail with ``stream_error``.

Failure causes (`Cause`): ``http_<status>``, ``connection_error``,
``timeout``, ``malformed_response`` (not HTTP, or a non-streamed body without
``choices``), ``malformed_stream`` (no ``[DONE]``), ``stream_error``.
"""

from __future__ import annotations

import re
import time
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from gpufleet.bench.connection import BenchConnection

_CONTENT = re.compile(rb'"(?:content|text|reasoning_content|reasoning)"\s*:\s*"(?!")')
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')
_ERROR_EVENT = re.compile(rb'(?m)^data: ?\{\s*"error"')


_DONE_LINES = (b"data: [DONE]", b"data:[DONE]")


def _is_done(events: bytes) -> bool:
    """Whether complete ``events`` contain the ``data: [DONE]`` line (a plain search: a
    multi-line regex anchored at ``^`` is several times slower)."""
    return events.startswith(_DONE_LINES) or any(b"\n" + line in events for line in _DONE_LINES)


class Cause:
    CONNECTION = "connection_error"
    TIMEOUT = "timeout"
    MALFORMED_RESPONSE = "malformed_response"
    MALFORMED_STREAM = "malformed_stream"
    STREAM_ERROR = "stream_error"
    CANCELLED = "cancelled"
    """Not a failure: the run was interrupted while the request was in flight."""

    @staticmethod
    def http(status: int) -> str:
        return f"http_{status}"


class RequestResult(NamedTuple):
    """What one request measured; times in seconds, ``None`` where not measured."""

    spec_index: int
    start_s: float
    """Dispatch time, seconds since the run started."""
    lag_s: float
    """Dispatch time minus the scheduled arrival (open loop; 0 in closed loop)."""
    ttft_s: float | None
    e2e_s: float | None
    tpot_s: float | None
    """Mean time per output token after the first: (last chunk − first) / (tokens − 1)."""
    num_output_tokens: int
    num_chunks: int
    num_prompt_tokens: int
    """The workload's estimate."""
    usage_reported: bool
    error: str | None


class Exchange:
    """The state of one request in flight; `finish` reports a `RequestResult` once."""

    __slots__ = (
        "_body", "_chunks", "_done", "_first_at", "_itl", "_last_at", "_pending", "_report",
        "_stream_error", "_usage_tokens", "conn", "finished", "index", "lag_s",
        "num_prompt_tokens", "origin", "sent_at", "status", "stream",
    )  # fmt: skip

    def __init__(
        self,
        index: int,
        stream: bool,
        num_prompt_tokens: int,
        lag_s: float,
        origin: float,
        itl: array[float],
        report: Callable[[Exchange, RequestResult], None],
    ):
        self.index = index
        self.stream = stream
        self.num_prompt_tokens = num_prompt_tokens
        self.lag_s = lag_s
        self.origin = origin
        self.sent_at = time.perf_counter()
        self.status = 0
        self.conn: BenchConnection | None = None
        self.finished = False
        self._itl = itl
        self._report = report
        self._pending = b""
        self._body: list[bytes] = []
        self._first_at = 0.0
        self._last_at = 0.0
        self._chunks = 0
        self._usage_tokens = -1
        self._done = False
        self._stream_error = False

    # -- fed by the connection ---------------------------------------------------------
    def on_status(self, status: int) -> None:
        self.status = status

    def on_body(self, data: bytes) -> None:
        if self.status != 200:
            return  # the status is the cause; the body is not needed
        if not self.stream:
            self._body.append(data)
            return
        now = time.perf_counter()
        buffer = self._pending + data if self._pending else data
        lf = buffer.rfind(b"\n\n")
        crlf = buffer.rfind(b"\n\r\n")
        end = max(lf + 2 if lf >= 0 else 0, crlf + 3 if crlf >= 0 else 0)
        if end == 0:
            self._pending = buffer
            return
        events = buffer[:end] if end < len(buffer) else buffer
        self._pending = buffer[end:]
        count = len(_CONTENT.findall(events))
        if count:
            if self._chunks == 0:
                self._first_at = now
            else:
                self._itl.append(now - self._last_at)
            if count > 1:
                self._itl.frombytes(bytes(8 * (count - 1)))  # gaps of 0.0 within one read
            self._last_at = now
            self._chunks += count
        at = events.rfind(b'"completion_tokens"')
        if at >= 0 and (found := _COMPLETION_TOKENS.match(events, at)):
            self._usage_tokens = int(found.group(1))
        if b"[DONE]" in events and _is_done(events):
            self._done = True
        if b'"error"' in events and _ERROR_EVENT.search(events):
            self._stream_error = True

    def on_complete(self) -> None:
        if self.status != 200:
            self.finish(Cause.http(self.status))
        elif not self.stream:
            self._complete_unstreamed()
        elif self._stream_error:
            self.finish(Cause.STREAM_ERROR)
        elif not self._done:
            self.finish(Cause.MALFORMED_STREAM)
        else:
            self.finish(None)

    def fail(self, cause: str) -> None:
        """The exchange ended without a complete response (connection lost, timeout, ...)."""
        if cause == Cause.CONNECTION and self.status and (self.status != 200 or self._done):
            self.on_complete()  # a body delimited by the connection's end: judge what came
        else:
            self.finish(cause)

    # -- result ------------------------------------------------------------------------
    def _complete_unstreamed(self) -> None:
        body = b"".join(self._body)
        if b'"choices"' not in body:
            self.finish(Cause.MALFORMED_RESPONSE)
            return
        found = _COMPLETION_TOKENS.findall(body)
        self._usage_tokens = int(found[-1]) if found else -1
        self.finish(None)

    def finish(self, error: str | None) -> None:
        if self.finished:
            return
        self.finished = True
        end = time.perf_counter()
        ok = error is None
        tokens = self._usage_tokens if self._usage_tokens >= 0 else self._chunks
        first = self._first_at if ok and self._first_at else None
        if ok and not self.stream:
            first = end  # the whole answer at once: TTFT = E2E
        tpot = None
        if first is not None and tokens > 1 and self.stream:
            tpot = (self._last_at - first) / (tokens - 1)
        result = RequestResult(
            spec_index=self.index,
            start_s=self.sent_at - self.origin,
            lag_s=self.lag_s,
            ttft_s=first - self.sent_at if first is not None else None,
            e2e_s=end - self.sent_at if ok else None,
            tpot_s=tpot,
            num_output_tokens=tokens if ok else 0,
            num_chunks=self._chunks,
            num_prompt_tokens=self.num_prompt_tokens,
            usage_reported=self._usage_tokens >= 0,
            error=error,
        )
        self._report(self, result)
