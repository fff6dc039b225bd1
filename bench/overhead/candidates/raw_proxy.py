"""Candidate HTTP stack: raw asyncio Protocols on uvloop, httptools on both sides.

Minimal reverse proxy for bench/overhead.py. POST /v1/chat/completions: read the body, parse it
with orjson (look at "model" and "stream"), forward it over a pooled keep-alive connection and
relay the response; text/event-stream is relayed read by read with chunked transfer-encoding.
GET /health -> 200. Everything runs in protocol callbacks: no task or coroutine per request.

    python raw_proxy.py --port 8000 --upstream http://127.0.0.1:8080

Ablation switches (to measure what costs what): --no-json, --task-per-request, --no-coalesce,
--minimal-headers (no header callbacks: fixed upstream request headers, fixed response heads).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections import deque
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop

CHAT_PATH = b"/v1/chat/completions"
# Request headers not forwarded upstream (hop-by-hop, or rewritten by the proxy).
SKIP_REQUEST = frozenset(
    b"host connection keep-alive proxy-connection transfer-encoding te trailer upgrade "
    b"content-length expect".split()
)
# Response headers not relayed to the client.
SKIP_RESPONSE = frozenset(
    b"connection keep-alive proxy-connection transfer-encoding te trailer upgrade "
    b"content-length".split()
)
STATUS_LINES = {
    200: b"HTTP/1.1 200 OK\r\n",
    400: b"HTTP/1.1 400 Bad Request\r\n",
    404: b"HTTP/1.1 404 Not Found\r\n",
    502: b"HTTP/1.1 502 Bad Gateway\r\n",
}
CLOSE = b"connection: close\r\n"
CHUNK_END = b"0\r\n\r\n"
HEALTH = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nok\n"

OPTS = argparse.Namespace(json=True, tasks=False, coalesce=True, minimal=False)


def simple_response(status: int, message: str, keep_alive: bool) -> bytes:
    body = orjson.dumps({"error": {"message": message, "code": status}})
    head = STATUS_LINES[status] + b"content-type: application/json\r\n"
    head += b"content-length: %d\r\n" % len(body)
    return head + (b"\r\n" if keep_alive else CLOSE + b"\r\n") + body


class Upstream:
    """One upstream server and its pool of idle keep-alive connections."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.host_header = b"host: %s:%d\r\n" % (self.host.encode(), self.port)
        self.idle: list[UpstreamConn] = []

    def send(self, client: ClientConn, data: bytes, retry: bool = True) -> None:
        idle = self.idle
        while idle:
            conn = idle.pop()  # LIFO: the most recently used connection is the warmest
            if conn.transport is not None:
                conn.start(client, data, retry)
                return
        loop = asyncio.get_running_loop()
        proto = MinimalUpstreamConn if OPTS.minimal else UpstreamConn
        fut = asyncio.ensure_future(
            loop.create_connection(lambda: proto(self), self.host, self.port)
        )
        fut.add_done_callback(lambda f: self._connected(f, client, data))

    def _connected(self, fut: asyncio.Future, client: ClientConn, data: bytes) -> None:
        if fut.cancelled() or fut.exception() is not None:
            client.fail(502, "upstream connect failed")
            return
        _, conn = fut.result()
        if client.transport is None:  # client went away meanwhile
            self.release(conn)
            return
        conn.start(client, data, False)

    def release(self, conn: UpstreamConn) -> None:
        if conn.reading_paused:
            conn.reading_paused = False
            conn.transport.resume_reading()
        self.idle.append(conn)


class UpstreamConn(asyncio.Protocol):
    __slots__ = (
        "chunked",
        "client",
        "complete",
        "data",
        "head",
        "keep_alive",
        "length",
        "out",
        "parser",
        "reading_paused",
        "retry",
        "sse",
        "started",
        "transport",
        "upstream",
    )

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.client: ClientConn | None = None
        self.out: list[bytes] = []
        self.head: list[bytes] = []
        self.data = b""
        self.retry = False
        self.started = False
        self.complete = False
        self.chunked = False
        self.keep_alive = True
        self.reading_paused = False
        self.sse = False
        self.length: bytes | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def start(self, client: ClientConn, data: bytes, retry: bool) -> None:
        self.client = client
        self.data = data
        self.retry = retry
        self.started = False
        self.complete = False
        self.sse = False
        self.length = None
        client.upstream = self
        if client.writing_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:  # unsolicited bytes on an idle connection
            self.transport.close()
            return
        self.started = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()
            return
        out = self.out
        if out:
            transport = client.transport
            if transport is not None:
                if OPTS.coalesce:
                    transport.write(b"".join(out) if len(out) > 1 else out[0])
                else:
                    for piece in out:
                        transport.write(piece)
            out.clear()
        if self.complete:
            self.client = None
            self.data = b""
            client.response_done()
            if self.keep_alive and self.transport is not None:
                self.upstream.release(self)
            elif self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        client = self.client
        if client is None or self.complete:
            return
        self.client = None
        if not self.started and self.retry:
            # The pooled connection was closed by the upstream before it answered: retry once.
            self.upstream.send(client, self.data, retry=False)
        elif not self.started:
            client.fail(502, "upstream closed the connection")
        else:
            client.abort()

    def pause_writing(self) -> None:
        if self.client is not None and self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client is not None and self.client.transport is not None:
            self.client.transport.resume_reading()

    # -- httptools callbacks ---------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname not in SKIP_RESPONSE:
            if lname == b"content-type" and value.startswith(b"text/event-stream"):
                self.sse = True
            self.head.append(b"%s: %s\r\n" % (name, value))
        elif lname == b"content-length":
            self.length = value

    def on_headers_complete(self) -> None:
        parser = self.parser
        client = self.client
        status = parser.get_status_code()
        self.keep_alive = parser.should_keep_alive()
        line = STATUS_LINES.get(status) or b"HTTP/1.1 %d Upstream\r\n" % status
        head = self.head
        head.insert(0, line)
        # Relay chunked whenever the upstream gave no length; text/event-stream from an upstream
        # that sent Content-Length is re-chunked as well, as a streaming gateway does.
        length = self.length
        if client.http11 and (self.sse or length is None):
            self.chunked = True
            head.append(b"transfer-encoding: chunked\r\n")
        else:
            self.chunked = False
            if length is not None:
                head.append(b"content-length: %s\r\n" % length)
            else:
                client.keep_alive = False
        if not client.keep_alive:
            head.append(CLOSE)
        head.append(b"\r\n")
        self.out.append(b"".join(head))
        head.clear()

    def on_body(self, body: bytes) -> None:
        if self.chunked:
            self.out.append(b"%x\r\n%s\r\n" % (len(body), body))
        else:
            self.out.append(body)

    def on_message_complete(self) -> None:
        if self.chunked:
            self.out.append(CHUNK_END)
        self.complete = True


class ClientConn(asyncio.Protocol):
    __slots__ = (
        "body",
        "headers",
        "http11",
        "keep_alive",
        "parser",
        "queue",
        "stream",
        "transport",
        "upstream",
        "upstreams",
        "url",
        "writing_paused",
    )

    def __init__(self, upstream: Upstream) -> None:
        self.upstreams = upstream
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[bytes] = []
        self.body: list[bytes] = []
        self.queue: deque[tuple] | None = None
        self.upstream: UpstreamConn | None = None  # the connection serving the current request
        self.keep_alive = True
        self.http11 = True
        self.stream = False
        self.writing_paused = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(400, "upgrade not supported")
        except httptools.HttpParserError:
            self.fail(400, "malformed HTTP request")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        up = self.upstream
        if up is not None:
            self.upstream = None
            up.client = None
            if up.transport is not None:
                up.transport.close()  # response half-relayed: the connection cannot be reused

    def pause_writing(self) -> None:
        self.writing_paused = True
        up = self.upstream
        if up is not None and up.transport is not None and not up.reading_paused:
            up.reading_paused = True
            up.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        up = self.upstream
        if up is not None and up.transport is not None and up.reading_paused:
            up.reading_paused = False
            up.transport.resume_reading()

    # -- httptools callbacks ---------------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in SKIP_REQUEST:
            self.headers.append(b"%s: %s\r\n" % (name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        req = (
            parser.get_method(),
            self.url,
            self.headers,
            self.body,
            parser.should_keep_alive(),
            parser.get_http_version() == "1.1",
        )
        self.url = b""
        self.headers = []
        self.body = []
        if self.upstream is not None or self.queue:  # pipelined behind a request in flight
            if self.queue is None:
                self.queue = deque()
            self.queue.append(req)
            if len(self.queue) > 16 and self.transport is not None:
                self.transport.pause_reading()
            return
        if OPTS.tasks:
            asyncio.get_running_loop().create_task(self.handle_async(req))
        else:
            self.handle(req)

    # -- request handling ------------------------------------------------------------------
    async def handle_async(self, req: tuple) -> None:
        self.handle(req)

    def handle(self, req: tuple) -> None:
        method, url, headers, body, keep_alive, http11 = req
        self.keep_alive = keep_alive
        self.http11 = http11
        path = url.split(b"?", 1)[0] if b"?" in url else url
        if path == CHAT_PATH and method == b"POST":
            data = body[0] if len(body) == 1 else b"".join(body)
            if OPTS.json:
                try:
                    payload = orjson.loads(data)
                except orjson.JSONDecodeError:
                    self.fail(400, "request body is not valid JSON", keep=True)
                    return
                if type(payload) is not dict or type(payload.get("model")) is not str:
                    self.fail(400, "'model' is required", keep=True)
                    return
                self.stream = payload.get("stream") is True
            else:
                self.stream = b'"stream":true' in data
            up = self.upstreams
            if OPTS.minimal:  # nginx picks the body by this header; a gateway would not send it
                headers = [MINIMAL_STREAM if self.stream else MINIMAL_JSON]
            headers.append(b"content-length: %d\r\n\r\n" % len(data))
            request = b"".join((b"POST ", url, b" HTTP/1.1\r\n", up.host_header, *headers, data))
            up.send(self, request)
        elif path == b"/health" and method in (b"GET", b"HEAD"):
            self.transport.write(HEALTH)
            self.response_done()
        else:
            self.fail(404, "not found", keep=True)

    def response_done(self) -> None:
        self.upstream = None
        transport = self.transport
        if transport is None:
            return
        if not self.keep_alive:
            transport.close()
            return
        queue = self.queue
        if queue:
            if len(queue) == 17:
                transport.resume_reading()
            self.handle(queue.popleft())

    def fail(self, status: int, message: str, keep: bool = False) -> None:
        """Answer with an error; keep=True keeps the connection open (request fully read)."""
        self.upstream = None
        if self.transport is None:
            return
        keep = keep and self.keep_alive
        self.transport.write(simple_response(status, message, keep))
        if keep:
            self.response_done()
        else:
            self.transport.close()

    def abort(self) -> None:
        self.upstream = None
        if self.transport is not None:
            self.transport.abort()


MINIMAL_JSON = b"content-type: application/json\r\n"
MINIMAL_STREAM = b"content-type: application/json\r\nx-bench-stream: 1\r\n"
SSE_HEAD = b"content-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


class MinimalClientConn(ClientConn):
    """Ablation: no on_header callback at all (httptools skips header callbacks)."""

    on_header = None  # type: ignore[assignment]


class MinimalUpstreamConn(UpstreamConn):
    """Ablation: no on_header; fixed heads; non-streaming bodies buffered to set the length."""

    on_header = None  # type: ignore[assignment]

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        status = self.parser.get_status_code()
        self.chunked = self.client.stream
        if self.chunked:
            self.out.append((STATUS_LINES.get(status) or STATUS_LINES[502]) + SSE_HEAD)
        self.head.clear()
        self.status_line = STATUS_LINES.get(status) or STATUS_LINES[502]

    def on_body(self, body: bytes) -> None:
        if self.chunked:
            self.out.append(b"%x\r\n%s\r\n" % (len(body), body))
        else:
            self.head.append(body)

    def on_message_complete(self) -> None:
        if self.chunked:
            self.out.append(CHUNK_END)
        else:
            body = b"".join(self.head)
            self.head.clear()
            self.out.append(
                b"%scontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (self.status_line, len(body), body)
            )
        self.complete = True


async def serve(host: str, port: int, upstream_url: str) -> None:
    loop = asyncio.get_running_loop()
    upstream = Upstream(upstream_url)
    server = await loop.create_server(
        lambda: (MinimalClientConn if OPTS.minimal else ClientConn)(upstream),
        host,
        port,
        backlog=4096,
        reuse_address=True,
    )
    for sock in server.sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8080")
    ap.add_argument("--no-json", dest="json", action="store_false", help="skip the orjson parse")
    ap.add_argument("--task-per-request", dest="tasks", action="store_true")
    ap.add_argument("--no-coalesce", dest="coalesce", action="store_false")
    ap.add_argument("--minimal-headers", dest="minimal", action="store_true")
    args = ap.parse_args()
    OPTS.json, OPTS.tasks, OPTS.coalesce = args.json, args.tasks, args.coalesce
    OPTS.minimal = args.minimal
    uvloop.run(serve(args.host, args.port, args.upstream))


if __name__ == "__main__":
    main()
