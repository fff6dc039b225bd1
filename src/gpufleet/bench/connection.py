"""Keep-alive HTTP/1.1 client connections for the load generator (asyncio + httptools).

Leaner than `gpufleet.backends.connection`, which relays bodies for the gateway:
here every callback goes straight to the request's `Exchange`, no header is
decoded, and timeouts are enforced by the runner's single sweep over the
requests in flight rather than one timer per request. One exchange at a time
per connection; a connection whose response allowed keep-alive goes back to
the pool before the exchange is told that it completed, so the next request
can reuse it at once.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable
from typing import cast

import httptools

from gpufleet.bench.exchange import Cause, Exchange


class BenchConnection(asyncio.Protocol):
    def __init__(self, pool: ConnectionPool):
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._keep_alive = True
        self.exchange: Exchange | None = None
        self.closed = False

    # -- asyncio -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        self._fail(Cause.CONNECTION)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            raise  # a bug in the exchange, not the server's fault
        except httptools.HttpParserError:
            self._fail(Cause.MALFORMED_RESPONSE)
            self.abort()

    # -- exchange ----------------------------------------------------------------------
    def send(self, request: bytes, exchange: Exchange) -> None:
        """Write one complete request; its response goes to ``exchange``."""
        assert self._transport is not None, "send before connection_made"
        self.exchange = exchange
        exchange.conn = self
        self._transport.write(request)

    def abort(self) -> None:
        """Close at once, without telling the exchange (the caller already knows)."""
        self.exchange = None
        if not self.closed:
            self.closed = True
            if self._transport is not None:
                self._transport.abort()
        self._pool.forget(self)

    def _fail(self, cause: str) -> None:
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.fail(cause)

    # -- httptools callbacks -------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()
        if self.exchange is not None:
            self.exchange.on_status(self._parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.on_body(body)

    def on_message_complete(self) -> None:
        exchange, self.exchange = self.exchange, None
        if self._keep_alive and not self.closed:
            self._pool.release(self)
        else:
            self.abort()
        if exchange is not None:
            exchange.on_complete()


class ConnectionPool:
    """Connections to one server; idle ones are reused last-in first-out."""

    def __init__(self, host: str, port: int, tls: bool = False):
        self._host = host
        self._port = port
        self._ssl = ssl.create_default_context() if tls else None
        self._idle: list[BenchConnection] = []
        self._open: set[BenchConnection] = set()
        self.num_connecting = 0

    @property
    def num_open(self) -> int:
        return len(self._open) + self.num_connecting

    def take_idle(self) -> BenchConnection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def connect(self) -> Awaitable[BenchConnection]:
        """A new connection (``OSError`` when the server cannot be reached).

        It counts in `num_open` from this call on, before the coroutine runs,
        so that a burst of calls cannot overshoot a connection limit.
        """
        self.num_connecting += 1
        return self._connect()

    async def _connect(self) -> BenchConnection:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_connection(
                lambda: BenchConnection(self), self._host, self._port, ssl=self._ssl
            )
        finally:
            self.num_connecting -= 1
        self._open.add(protocol)
        return protocol

    def release(self, conn: BenchConnection) -> None:
        self._idle.append(conn)

    def forget(self, conn: BenchConnection) -> None:
        self._open.discard(conn)

    def close(self) -> None:
        for conn in list(self._open):
            conn.abort()
        self._idle.clear()
