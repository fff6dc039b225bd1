"""A lean HTTP/1.1 server on asyncio protocols with httptools parsing.

Chosen over aiohttp/uvicorn by measurement (see README, bench/overhead.py):
per request it does one parse, one task, one coalesced write. It supports
keep-alive, pipelined requests (answered in order), ``Expect: 100-continue``,
chunked request bodies, a body-size limit enforced while reading (413 before
the body is buffered), chunked streaming responses with write flow control,
and tells the handler when the client goes away.

Contract for handlers: ``async def handler(request, responder)``; it must end
the exchange with ``responder.send(...)`` or ``start_stream`` … ``end_stream``.
A handler that raises gets a plain 500 written by ``on_handler_error``; the
API layer catches its own errors first, so that is a bug signal, never a
client's bad input.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import httptools

from gpufleet.api.errors import error_body

Handler = Callable[["Request", "Responder"], Awaitable[None]]

_REASONS = {
    100: b"Continue",
    200: b"OK",
    204: b"No Content",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Payload Too Large",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Entity",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
_STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason) for code, reason in _REASONS.items()}
MAX_PIPELINED = 16
MAX_HEADER_BYTES = 64 * 1024


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d Status\r\n" % status
    return line


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    body: bytes
    keep_alive: bool
    client: str


@dataclass(slots=True)
class _Incoming:
    url: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    header_bytes: int = 0
    body: list[bytes] = field(default_factory=list)
    body_len: int = 0
    rejected: tuple[int, bytes] | None = None


class Responder:
    """Writes one response on a connection; at most one response per request."""

    __slots__ = (
        "_conn",
        "_done",
        "_keep_alive",
        "_streaming",
        "disconnect_callbacks",
    )

    def __init__(self, conn: HttpServerProtocol, keep_alive: bool):
        self._conn = conn
        self._keep_alive = keep_alive
        self._streaming = False
        self._done = False
        self.disconnect_callbacks: list[Callable[[], None]] = []

    @property
    def done(self) -> bool:
        return self._done

    @property
    def started(self) -> bool:
        """True once any byte of the response has been written."""
        return self._streaming or self._done

    @property
    def client_gone(self) -> bool:
        return self._conn.closed

    def send(self, status: int, headers: bytes, body: bytes) -> None:
        """Write a whole response. ``headers`` are preformatted ``Name: value\\r\\n`` lines."""
        if self._done:
            return
        self._done = True
        conn_header = b"" if self._keep_alive else b"connection: close\r\n"
        self._conn.write(
            b"%s%scontent-length: %d\r\n%s\r\n%s"
            % (status_line(status), headers, len(body), conn_header, body)
        )
        self._conn.response_done(self._keep_alive)

    def start_stream(self, status: int, headers: bytes, first_chunk: bytes = b"") -> None:
        """Write the head of a chunked response, optionally with its first chunk."""
        self._streaming = True
        conn_header = b"" if self._keep_alive else b"connection: close\r\n"
        head = b"%s%stransfer-encoding: chunked\r\n%s\r\n" % (
            status_line(status),
            headers,
            conn_header,
        )
        if first_chunk:
            head += b"%x\r\n%s\r\n" % (len(first_chunk), first_chunk)
        self._conn.write(head)

    def write_chunk(self, data: bytes) -> None:
        if data and not self._done:
            self._conn.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self, last_chunk: bytes = b"") -> None:
        if self._done:
            return
        self._done = True
        if last_chunk:
            self._conn.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(last_chunk), last_chunk))
        else:
            self._conn.write(b"0\r\n\r\n")
        self._conn.response_done(self._keep_alive)

    def abort(self) -> None:
        """Reset the connection (RST): fault injection for a network failure mid-response."""
        self._done = True
        self._conn.abort()

    @property
    def write_paused(self) -> bool:
        return self._conn.write_paused

    def on_resume(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the client's socket accepts writes again."""
        self._conn.resume_callbacks.append(callback)


@dataclass
class ClientConnections:
    """Open connections per client address, with an optional cap (0: none)."""

    limit: int = 0
    open_by_host: dict[str, int] = field(default_factory=dict)

    def admit(self, host: str) -> bool:
        count = self.open_by_host.get(host, 0)
        if self.limit and count >= self.limit:
            return False
        self.open_by_host[host] = count + 1
        return True

    def release(self, host: str) -> None:
        count = self.open_by_host.get(host, 0) - 1
        if count > 0:
            self.open_by_host[host] = count
        else:
            self.open_by_host.pop(host, None)


class HttpServerProtocol(asyncio.Protocol):
    """One client connection. Requests are handled one at a time, in order."""

    def __init__(
        self,
        handler: Handler,
        max_body_bytes: int,
        on_handler_error: Callable[[Request, BaseException], None],
        connections: set[HttpServerProtocol],
        per_client: ClientConnections | None = None,
    ):
        self._per_client = per_client
        self._host: str | None = None
        self._handler = handler
        self._max_body_bytes = max_body_bytes
        self._on_handler_error = on_handler_error
        self._connections = connections
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._incoming = _Incoming()
        self._queue: deque[Request] = deque()
        self._busy = False
        self._client = ""
        self.closed = False
        self.write_paused = False
        self.resume_callbacks: list[Callable[[], None]] = []
        self._responder: Responder | None = None
        self._reading_paused = False

    # -- asyncio.Protocol --------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._connections.add(self)
        peer = transport.get_extra_info("peername")
        self._client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        per_client = self._per_client
        if per_client is not None and isinstance(peer, tuple):
            if not per_client.admit(str(peer[0])):
                self._reject(429, b"too many open connections from this client; reuse one")
                return
            self._host = str(peer[0])

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, b"upgrade is not supported")
        except httptools.HttpParserError as exc:
            if self._incoming.rejected is not None:
                status, message = self._incoming.rejected
                self._reject(status, message)
            else:
                self._reject(400, b"malformed HTTP request: " + str(exc).encode()[:200])

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._connections.discard(self)
        if self._host is not None and self._per_client is not None:
            self._per_client.release(self._host)
            self._host = None
        self._queue.clear()
        responder = self._responder
        if responder is not None:
            for callback in responder.disconnect_callbacks:
                callback()
            responder.disconnect_callbacks.clear()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self._wake_writer()

    # -- httptools callbacks -------------------------------------------------
    def on_message_begin(self) -> None:
        self._incoming = _Incoming()

    def on_url(self, url: bytes) -> None:
        self._incoming.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        incoming = self._incoming
        incoming.header_bytes += len(name) + len(value)
        if incoming.header_bytes > MAX_HEADER_BYTES:
            incoming.rejected = (431, b"request headers too large")
            raise httptools.HttpParserError("headers too large")
        incoming.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        headers = self._incoming.headers
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body_bytes:
            self._incoming.rejected = (413, b"request body too large")
            raise httptools.HttpParserError("body too large")
        if headers.get("expect", "").lower() == "100-continue" and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        incoming = self._incoming
        incoming.body_len += len(body)
        if incoming.body_len > self._max_body_bytes:
            incoming.rejected = (413, b"request body too large")
            raise httptools.HttpParserError("body too large")
        incoming.body.append(body)

    def on_message_complete(self) -> None:
        incoming = self._incoming
        parsed = httptools.parse_url(incoming.url)
        body = incoming.body
        request = Request(
            method=self._parser.get_method().decode("latin-1"),
            path=(parsed.path or b"/").decode("latin-1"),
            query=(parsed.query or b"").decode("latin-1"),
            headers=incoming.headers,
            body=body[0] if len(body) == 1 else b"".join(body),
            keep_alive=self._parser.should_keep_alive(),
            client=self._client,
        )
        if self._busy:
            self._queue.append(request)
            if len(self._queue) >= MAX_PIPELINED and self._transport is not None:
                self._transport.pause_reading()
                self._reading_paused = True
        else:
            self._start(request)

    # -- internals ----------------------------------------------------------
    def _start(self, request: Request) -> None:
        self._busy = True
        responder = Responder(self, request.keep_alive)
        self._responder = responder
        task = asyncio.get_running_loop().create_task(self._run(request, responder))
        del task

    async def _run(self, request: Request, responder: Responder) -> None:
        try:
            await self._handler(request, responder)
        except Exception as exc:  # a bug in a handler: answer, log, keep serving
            self._on_handler_error(request, exc)
            if not responder.started:
                responder.send(500, b"content-type: application/json\r\n", _INTERNAL_ERROR_BODY)
            else:
                self.close()
        if not responder.done and not self.closed:
            self.close()  # a handler that forgot to answer: never leave a client hanging

    def response_done(self, keep_alive: bool) -> None:
        self._responder = None
        self._busy = False
        if not keep_alive:
            self.close()
            return
        if self._queue:
            self._start(self._queue.popleft())
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(data)

    def abort(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.close()

    def _wake_writer(self) -> None:
        self.write_paused = False
        callbacks, self.resume_callbacks = self.resume_callbacks, []
        for callback in callbacks:
            callback()

    def _reject(self, status: int, message: bytes) -> None:
        """Answer a request refused at the protocol level (before any handler) and close."""
        body = error_body(message.decode("latin-1"), "invalid_request_error", None, status)
        self.write(
            b"%scontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status_line(status), len(body), body)
        )
        self._queue.clear()
        self.close()


_INTERNAL_ERROR_BODY = error_body("internal gateway error", "server_error", None, 500)


@dataclass
class HttpServer:
    """Listens on ``host:port`` and dispatches requests to ``handler``."""

    handler: Handler
    max_body_bytes: int
    on_handler_error: Callable[[Request, BaseException], None]
    connections: set[HttpServerProtocol] = field(default_factory=set)
    per_client: ClientConnections = field(default_factory=ClientConnections)
    """``per_client.limit``: open connections allowed per client address (0: no cap)."""
    _server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpServerProtocol(
                self.handler,
                self.max_body_bytes,
                self.on_handler_error,
                self.connections,
                self.per_client if self.per_client.limit else None,
            ),
            host,
            port,
            reuse_address=True,
            backlog=2048,
        )
        sockets = self._server.sockets
        return int(sockets[0].getsockname()[1]) if sockets else port

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    def idle_connections(self) -> list[HttpServerProtocol]:
        return [conn for conn in self.connections if not conn._busy]

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.close()
