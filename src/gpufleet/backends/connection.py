"""One keep-alive HTTP/1.1 connection to an engine replica, and its pool.

An ``Exchange`` is one request/response on a pooled connection. The response
body goes to a ``BodySink`` as it arrives (zero-copy relay for streams) or is
buffered. Timeouts are enforced by one lazily re-armed timer per exchange:

- ``connect_s``: TCP connect;
- ``first_byte_s``: from sending the request to the first byte of the body
  (headers alone do not count: nothing has reached the client yet);
- ``idle_s``: the longest silence between two body chunks;
- ``total_s``: the whole exchange.

Failures become ``BackendUnavailable`` (nothing received) or ``StreamBroken``
(part of the body was received); the caller decides about retries.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol, cast

import httptools

from gpufleet.errors import BackendUnavailable, GpufleetError, StreamBroken


class BodySink(Protocol):
    def on_headers(self, status: int, headers: dict[str, str]) -> None: ...
    def on_body(self, chunk: bytes) -> None: ...
    def on_complete(self) -> None: ...
    def on_error(self, error: GpufleetError) -> None: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float
    first_byte_s: float
    idle_s: float
    total_s: float


class UpstreamConnection(asyncio.Protocol):
    """A client connection; one exchange at a time."""

    def __init__(self, pool: ConnectionPool):
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._sink: BodySink | None = None
        self._status = 0
        self._headers: dict[str, str] = {}
        self._received_body = False
        self._keep_alive = True
        self._last_activity = 0.0
        self._sent_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timeouts: Timeouts | None = None
        self.reused = False

    # -- lifecycle -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        if self._sink is not None:
            reason = "connection closed by the replica"
            if exc is not None:
                reason = f"connection lost: {exc.__class__.__name__}"
            self._fail(reason)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail("malformed HTTP response from the replica")
            self.abort()

    # -- exchange ------------------------------------------------------------------
    def send(self, data: bytes, sink: BodySink, timeouts: Timeouts) -> None:
        """Write a full request; the response goes to ``sink``."""
        assert self.transport is not None
        self._sink = sink
        self._status = 0
        self._headers = {}
        self._received_body = False
        self._keep_alive = True
        self._timeouts = timeouts
        now = time.monotonic()
        self._sent_at = self._last_activity = now
        self._arm(timeouts.first_byte_s)
        self.transport.write(data)

    def abort(self) -> None:
        """Close at once (client went away, timeout); the replica sees a disconnect."""
        self._sink = None
        self._cancel_timer()
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()
        self._pool.forget(self)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # -- httptools callbacks ----------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._keep_alive = self._parser.should_keep_alive()
        if self._sink is not None:
            self._sink.on_headers(self._status, self._headers)

    def on_body(self, body: bytes) -> None:
        self._last_activity = time.monotonic()
        self._received_body = True
        if self._sink is not None:
            self._sink.on_body(body)

    def on_message_complete(self) -> None:
        sink, self._sink = self._sink, None
        self._cancel_timer()
        if self._keep_alive and not self.closed:
            self._pool.release(self)
        else:
            self.abort()
        if sink is not None:
            sink.on_complete()

    # -- timeouts ------------------------------------------------------------------
    def _arm(self, delay_s: float) -> None:
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(delay_s, 0.001), self._check_deadlines)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_deadlines(self) -> None:
        self._timer = None
        timeouts = self._timeouts
        if self._sink is None or timeouts is None:
            return
        now = time.monotonic()
        total_left = self._sent_at + timeouts.total_s - now
        if not self._received_body:
            left = min(self._sent_at + timeouts.first_byte_s - now, total_left)
            reason = "no first byte within the first-byte timeout"
        else:
            left = min(self._last_activity + timeouts.idle_s - now, total_left)
            reason = "the stream stalled past the idle timeout"
        if total_left <= 0:
            reason = "the exchange exceeded the total timeout"
        if left <= 0:
            self._fail(reason)
            self.abort()
        else:
            self._arm(left)

    def _fail(self, reason: str) -> None:
        sink, self._sink = self._sink, None
        self._cancel_timer()
        if sink is None:
            return
        endpoint_id = self._pool.endpoint_id
        if self._received_body:
            sink.on_error(StreamBroken(reason, endpoint_id=endpoint_id))
        else:
            stale = self.reused and self._status == 0
            sink.on_error(
                BackendUnavailable(reason, endpoint_id=endpoint_id, stale_connection=stale)
            )


class ConnectionPool:
    """Idle keep-alive connections to one replica (LIFO: the warmest first)."""

    def __init__(self, endpoint_id: str, host: str, port: int, max_idle: int = 512):
        self.endpoint_id = endpoint_id
        self._host = host
        self._port = port
        self._max_idle = max_idle
        self._idle: deque[UpstreamConnection] = deque()
        self._all: set[UpstreamConnection] = set()

    @property
    def num_open(self) -> int:
        return len(self._all)

    async def acquire(self, connect_s: float) -> UpstreamConnection:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
        loop = asyncio.get_running_loop()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for returns (or raises) the inner
            # result when a cancel arrives as the connect completes, swallowing the cancel,
            # so a scrape loop being stopped went on forever against a replica gone away
            async with asyncio.timeout(connect_s):
                _, protocol = await loop.create_connection(
                    lambda: UpstreamConnection(self), self._host, self._port
                )
        except (TimeoutError, OSError) as exc:
            reason = "connect timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            raise BackendUnavailable(
                f"cannot connect to {self._host}:{self._port}: {reason}",
                endpoint_id=self.endpoint_id,
            ) from None
        conn = protocol
        self._all.add(conn)
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        if len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            conn.abort()

    def forget(self, conn: UpstreamConnection) -> None:
        self._all.discard(conn)

    def close(self) -> None:
        for conn in list(self._all):
            conn.abort()
        self._idle.clear()
