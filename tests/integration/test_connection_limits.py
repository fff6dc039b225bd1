"""Per-client connection limits: a client cannot hold more than its share of sockets."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.support.processes import ProcessGroup, fleet_config, http_get, wait_for


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def exchange(sock: socket.socket, path: str = "/health") -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    return sock.recv(65536)


def test_connections_beyond_the_per_client_cap_are_refused_with_429(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    engine = procs.engine()
    config = fleet_config(
        [engine.url], gateway={"access_log": "off", "max_connections_per_client": 3}
    )
    url = procs.gateway(config, tmp_path)
    held = [connect(url) for _ in range(3)]
    for sock in held:
        assert exchange(sock).startswith(b"HTTP/1.1 200")  # keep-alive: still open
    extra = connect(url)
    answer = extra.recv(65536)
    assert answer.startswith(b"HTTP/1.1 429")
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["type"] == "invalid_request_error"
    assert extra.recv(1) == b""  # closed by the gateway
    extra.close()
    held.pop().close()

    # the slot is released once the gateway sees the close
    def fresh_ok() -> bool:
        sock = connect(url)
        try:
            return exchange(sock).startswith(b"HTTP/1.1 200")
        finally:
            sock.close()

    wait_for(fresh_ok, timeout_s=5.0, what="a freed slot")
    for sock in held:
        sock.close()
    assert http_get(url + "/health")[0] == 200


def test_no_cap_by_default(procs: ProcessGroup, tmp_path: Path) -> None:
    engine = procs.engine()
    url = procs.gateway(fleet_config([engine.url]), tmp_path)
    held = [connect(url) for _ in range(40)]
    try:
        assert all(exchange(sock).startswith(b"HTTP/1.1 200") for sock in held)
    finally:
        for sock in held:
            sock.close()
