"""``GET /v1/models`` once before a run, to pick the model when ``--model`` is not given."""

from __future__ import annotations

import asyncio
import ssl

import httptools
import orjson

from gpufleet.bench.request import Target, models_request


class _Collector:
    """httptools callbacks: the status and the (de-chunked) body."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.body: list[bytes] = []
        self.complete = False

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


async def first_model(
    target: Target, headers: tuple[tuple[str, str], ...], timeout_s: float
) -> str:
    """The first model id the server lists; ``ConnectionError`` with the reason otherwise."""
    try:
        async with asyncio.timeout(timeout_s):  # not wait_for: it can swallow a cancel
            return await _first_model(target, headers)
    except TimeoutError:
        raise ConnectionError(f"no answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise ConnectionError(exc.strerror or str(exc)) from None


async def _first_model(target: Target, headers: tuple[tuple[str, str], ...]) -> str:
    context = ssl.create_default_context() if target.tls else None
    reader, writer = await asyncio.open_connection(target.host, target.port, ssl=context)
    try:
        writer.write(models_request(target, headers))
        collector = _Collector()
        while not collector.complete and (data := await reader.read(65536)):
            try:
                collector.parser.feed_data(data)
            except httptools.HttpParserError:
                raise ConnectionError("not an HTTP response") from None
    finally:
        writer.close()
    if collector.status != 200:
        raise ConnectionError(f"GET {target.base_path}/models answered {collector.status}")
    try:
        models = orjson.loads(b"".join(collector.body))["data"]
        return str(models[0]["id"])
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        raise ConnectionError(f"GET {target.base_path}/models listed no model") from None
