"""Candidate HTTP stacks: a raw ASGI app (no framework) + aiohttp client, served by uvicorn
(httptools, uvloop) or by granian (Rust HTTP server, uvloop).

Minimal reverse proxy for bench/overhead.py, same behaviour as the other candidates. uvicorn and
granian are not project dependencies: run it from a throwaway venv (see bench/overhead/README.md).

    python asgi_proxy.py --server uvicorn --port 8000 --upstream http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson

SKIP_REQUEST = frozenset(
    b"host connection keep-alive proxy-connection transfer-encoding te trailer upgrade "
    b"content-length expect".split()
)
SKIP_RESPONSE = frozenset(
    b"connection keep-alive proxy-connection transfer-encoding te trailer upgrade "
    b"content-length date server".split()
)
CHAT_PATH = "/v1/chat/completions"
UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:8080").rstrip("/")
_session: aiohttp.ClientSession | None = None


def session() -> aiohttp.ClientSession:
    global _session
    if _session is None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=300, ttl_dns_cache=None)
        _session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        )
    return _session


async def respond(send: Any, status: int, ctype: bytes, body: bytes) -> None:
    headers = [(b"content-type", ctype), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def error(send: Any, status: int, message: str) -> None:
    body = orjson.dumps({"error": {"message": message, "code": status}})
    await respond(send, status, b"application/json", body)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == "/health":
        await respond(send, 200, b"text/plain", b"ok\n")
        return
    if path != CHAT_PATH or method != "POST":
        await error(send, 404, "not found")
        return
    msg = await receive()
    body = msg.get("body", b"")
    while msg.get("more_body"):
        msg = await receive()
        body += msg.get("body", b"")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        await error(send, 400, "request body is not valid JSON")
        return
    if type(payload) is not dict or type(payload.get("model")) is not str:
        await error(send, 400, "'model' is required")
        return
    _stream = payload.get("stream") is True  # a gateway routes/accounts on these two fields
    headers = {k.decode(): v.decode() for k, v in scope["headers"] if k not in SKIP_REQUEST}
    url = UPSTREAM + path + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
    try:
        async with session().post(url, data=body, headers=headers) as up:
            out = [(k.lower(), v) for k, v in up.raw_headers if k.lower() not in SKIP_RESPONSE]
            if up.content_type == "text/event-stream":  # no content-length: served chunked
                await send({"type": "http.response.start", "status": up.status, "headers": out})
                async for chunk in up.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return
            data = await up.read()
            out.append((b"content-length", b"%d" % len(data)))
            await send({"type": "http.response.start", "status": up.status, "headers": out})
            await send({"type": "http.response.body", "body": data})
    except aiohttp.ClientError as exc:
        await error(send, 502, f"upstream error: {exc}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8080")
    args = ap.parse_args()
    global UPSTREAM
    UPSTREAM = args.upstream.rstrip("/")
    os.environ["BENCH_UPSTREAM"] = UPSTREAM  # for the granian worker, which imports this module
    here = Path(__file__).resolve().parent
    if args.server == "granian":
        granian = shutil.which("granian", path=str(Path(sys.executable).parent))
        if granian is None:
            raise SystemExit("granian is not installed in this environment")
        argv = [granian, "--interface", "asgi", "--loop", "uvloop", "--http", "1"]
        argv += ["--workers", "1", "--runtime-threads", "1", "--no-access-log", "--backlog", "4096"]
        argv += ["--host", args.host, "--port", str(args.port), "--working-dir", str(here)]
        os.execv(granian, [*argv, "asgi_proxy:app"])
    import uvicorn

    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
