"""Candidate HTTP stack: aiohttp web server + one aiohttp ClientSession (keep-alive pool), uvloop.

Minimal reverse proxy for bench/overhead.py. POST /v1/chat/completions: read the body, parse it
with orjson (look at "model" and "stream"), forward it upstream and relay the response;
text/event-stream is relayed chunk by chunk as it arrives. GET /health -> 200.

    python aiohttp_proxy.py --port 8000 --upstream http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse

import aiohttp
import orjson
import uvloop
from aiohttp import web

SKIP_REQUEST = frozenset(
    [
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "expect",
    ]
)
SKIP_RESPONSE = frozenset(
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "content-encoding",
    ]
)
SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


def error(status: int, message: str) -> web.Response:
    body = orjson.dumps({"error": {"message": message, "code": status}})
    return web.Response(status=status, body=body, content_type="application/json")


async def chat(request: web.Request) -> web.StreamResponse:
    data = await request.read()
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return error(400, "request body is not valid JSON")
    if type(payload) is not dict or type(payload.get("model")) is not str:
        return error(400, "'model' is required")
    _stream = payload.get("stream") is True  # a gateway routes/accounts on these two fields
    headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIP_REQUEST}
    session = request.app[SESSION]
    url = request.app[UPSTREAM] + request.path_qs
    try:
        async with session.post(url, data=data, headers=headers) as up:
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in SKIP_RESPONSE}
            if up.content_type == "text/event-stream":
                resp = web.StreamResponse(status=up.status, headers=out_headers)
                resp.enable_chunked_encoding()
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
            body = await up.read()
            return web.Response(status=up.status, body=body, headers=out_headers)
    except aiohttp.ClientError as exc:
        return error(502, f"upstream error: {exc}")


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def make_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=300, ttl_dns_cache=None)
        app[SESSION] = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        )
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8080")
    args = ap.parse_args()
    uvloop.install()
    web.run_app(
        make_app(args.upstream),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
