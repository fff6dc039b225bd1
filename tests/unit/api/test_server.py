"""The HTTP/1.1 server on raw sockets: pipelining, limits, 100-continue, errors, disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gpufleet.api.server import HttpServer, Request, Responder

Handler = Callable[[Request, Responder], Awaitable[None]]


async def echo(request: Request, responder: Responder) -> None:
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    if request.path == "/stream":
        responder.start_stream(200, b"content-type: text/plain\r\n", b"one")
        responder.write_chunk(b"two")
        responder.end_stream(b"three")
        return
    responder.send(
        200, b"content-type: text/plain\r\n", request.path.encode() + b":" + request.body
    )


async def exchange(
    handler: Handler, data: bytes, limit: int = 1024, read_until_close: bool = True
) -> bytes:
    errors: list[BaseException] = []
    server = HttpServer(handler, limit, lambda request, exc: errors.append(exc))
    port = await server.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if read_until_close:
        response = await asyncio.wait_for(reader.read(), 5)
    else:
        response = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    server.stop_accepting()
    server.close_all()
    return response


def request(path: str, body: bytes = b"", extra: bytes = b"", close: bool = False) -> bytes:
    connection = b"connection: close\r\n" if close else b""
    return b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n%s%s\r\n%s" % (
        path.encode(),
        len(body),
        extra,
        connection,
        body,
    )


def test_pipelined_requests_are_answered_in_order() -> None:
    data = request("/a", b"1") + request("/b", b"22") + request("/c", b"333", close=True)
    response = asyncio.run(exchange(echo, data))
    assert response.count(b"HTTP/1.1 200 OK") == 3
    assert response.index(b"/a:1") < response.index(b"/b:22") < response.index(b"/c:333")


def test_declared_body_over_the_limit_gets_413_before_reading_it() -> None:
    data = b"POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 999999\r\n\r\n"
    response = asyncio.run(exchange(echo, data, limit=100))
    assert response.startswith(b"HTTP/1.1 413 ")
    assert b'"error"' in response


def test_chunked_body_over_the_limit_gets_413() -> None:
    chunk = b"x" * 80
    data = (
        b"POST /a HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 3
        + b"0\r\n\r\n"
    )
    response = asyncio.run(exchange(echo, data, limit=100))
    assert response.startswith(b"HTTP/1.1 413 ")


def test_chunked_body_within_the_limit_is_joined() -> None:
    data = (
        b"POST /a HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    assert b"/a:abcde" in asyncio.run(exchange(echo, data))


def test_expect_100_continue() -> None:
    data = request("/a", b"hello", extra=b"expect: 100-continue\r\n", close=True)
    response = asyncio.run(exchange(echo, data))
    assert response.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")


@pytest.mark.parametrize(
    "garbage",
    [b"NOT HTTP AT ALL\r\n\r\n", b"POST / HTTP/1.1\r\ncontent-length: abc\r\n\r\n",
     b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n"],
)  # fmt: skip
def test_malformed_requests_get_400_and_close(garbage: bytes) -> None:
    response = asyncio.run(exchange(echo, garbage))
    assert response.startswith(b"HTTP/1.1 400 ")


def test_oversized_headers_get_431() -> None:
    data = b"GET / HTTP/1.1\r\nhost: x\r\n" + b"x-big: " + b"a" * 70_000 + b"\r\n\r\n"
    response = asyncio.run(exchange(echo, data))
    assert response.startswith(b"HTTP/1.1 431 ")


def test_handler_bug_is_a_500_and_the_connection_keeps_serving() -> None:
    data = request("/boom") + request("/after", b"ok", close=True)
    response = asyncio.run(exchange(echo, data))
    assert response.startswith(b"HTTP/1.1 500 ")
    assert b"/after:ok" in response


def test_streamed_response_is_chunked() -> None:
    response = asyncio.run(exchange(echo, request("/stream", close=True)))
    assert b"transfer-encoding: chunked" in response
    assert response.endswith(b"3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n")


def test_client_disconnect_fires_callbacks() -> None:
    async def go() -> bool:
        fired = asyncio.Event()
        entered = asyncio.Event()

        async def waits(request: Request, responder: Responder) -> None:
            responder.disconnect_callbacks.append(fired.set)
            entered.set()
            await asyncio.sleep(10)

        server = HttpServer(waits, 1024, lambda request, exc: None)
        port = await server.start("127.0.0.1", 0)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("/a"))
        await writer.drain()
        await asyncio.wait_for(entered.wait(), 5)
        writer.close()
        await asyncio.wait_for(fired.wait(), 5)
        server.close_all()
        return fired.is_set()

    assert asyncio.run(go())
