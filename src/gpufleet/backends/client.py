"""Small buffered requests to a replica (health probes, metric scrapes, admin calls)."""

from __future__ import annotations

import asyncio

from gpufleet.backends.connection import ConnectionPool, Timeouts
from gpufleet.errors import BackendError, GpufleetError


class BufferSink:
    """Collects a whole response into ``result``."""

    def __init__(self) -> None:
        self.result: asyncio.Future[tuple[int, dict[str, str], bytes]] = (
            asyncio.get_running_loop().create_future()
        )
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    def on_headers(self, status: int, headers: dict[str, str]) -> None:
        self._status, self._headers = status, headers

    def on_body(self, chunk: bytes) -> None:
        self._body.append(chunk)

    def on_complete(self) -> None:
        if not self.result.done():
            self.result.set_result((self._status, self._headers, b"".join(self._body)))

    def on_error(self, error: GpufleetError) -> None:
        if not self.result.done():
            self.result.set_exception(error)


async def fetch(
    pool: ConnectionPool,
    host_header: bytes,
    method: str,
    path: str,
    timeout_s: float,
    body: bytes = b"",
) -> tuple[int, dict[str, str], bytes]:
    """One request on a pooled connection; raises ``BackendError`` on failure."""
    timeouts = Timeouts(timeout_s, timeout_s, timeout_s, timeout_s)
    for attempt in range(2):
        conn = await pool.acquire(timeout_s)
        sink = BufferSink()
        head = b"%s %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n" % (
            method.encode(),
            path.encode(),
            host_header,
            len(body),
        )
        if body:
            head += b"content-type: application/json\r\n"
        conn.send(head + b"\r\n" + body, sink, timeouts)
        try:
            return await sink.result
        except BackendError as exc:
            stale = getattr(exc, "stale_connection", False)
            if not stale or attempt:
                raise
        finally:
            if not sink.result.done():
                conn.abort()
    raise AssertionError("unreachable")
