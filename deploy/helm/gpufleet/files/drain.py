"""preStop hook of a vLLM pod (rendered by gpufleet): drain this replica at every gateway.

Runs in the engine container with python3 and the standard library only, before
Kubernetes sends SIGTERM. Environment:

- ``GPUFLEET_GATEWAY_HOST``: the gateway's headless Service (every gateway pod's address)
- ``GPUFLEET_GATEWAY_PORT``: the gateway port (default 8080)
- ``POD_IP`` and ``ENGINE_PORT``: this replica, known to the gateways as
  ``http://POD_IP:ENGINE_PORT``
- ``DRAIN_TIMEOUT_S``: how long to wait for its requests (default 90), polling every
  ``DRAIN_POLL_S`` (default 1)

Algorithm: resolve every gateway address; ``POST /admin/drain {"endpoint": URL}`` to
each (a 404 means that gateway does not route to this replica); then poll
``GET /admin/endpoints`` on each until none reports requests in flight to it, or the
timeout passes. The exit status is always 0: a failed drain must not block
termination (the gateways also drain an endpoint whose EndpointSlice entry turns
``terminating``).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request

REQUEST_TIMEOUT_S = 3.0


def gateway_addresses(host: str, port: int) -> list[str]:
    """``ip:port`` of every address ``host`` resolves to, sorted; empty when unresolvable."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    hosts = sorted({str(info[4][0]) for info in infos})
    return [f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in hosts]


def request(method: str, url: str, body: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def in_flight(gateway: str, endpoint_url: str) -> int:
    """Requests in flight from ``gateway`` to the endpoint (0 when it does not know it)."""
    status, body = request("GET", f"http://{gateway}/admin/endpoints")
    if status != 200:
        return 0
    for endpoint in json.loads(body).get("endpoints", []):
        if str(endpoint.get("url", "")).rstrip("/") == endpoint_url:
            return int(endpoint.get("in_flight", 0))
    return 0


def drain(gateways: list[str], endpoint_url: str, timeout_s: float, poll_s: float = 1.0) -> bool:
    """Drain at every gateway and wait; True when no request is left in flight in time."""
    draining = []
    for gateway in gateways:
        try:
            status, _ = request("POST", f"http://{gateway}/admin/drain", {"endpoint": endpoint_url})
        except OSError as exc:
            print(f"drain: {gateway}: {exc}", file=sys.stderr)
            continue
        print(f"drain: {gateway}: {status}", file=sys.stderr)
        if status == 200:
            draining.append(gateway)
    deadline = time.monotonic() + timeout_s
    while draining:
        remaining = []
        for gateway in draining:
            try:
                if in_flight(gateway, endpoint_url) > 0:
                    remaining.append(gateway)
            except (OSError, ValueError) as exc:
                print(f"drain: {gateway}: {exc}", file=sys.stderr)
        draining = remaining
        if not draining:
            break
        if time.monotonic() >= deadline:
            print(f"drain: requests still in flight at {draining}", file=sys.stderr)
            return False
        time.sleep(poll_s)
    return True


def main() -> int:
    env = os.environ
    pod_ip = env.get("POD_IP", "127.0.0.1")
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    endpoint_url = f"http://{host}:{env.get('ENGINE_PORT', '8000')}"
    port = int(env.get("GPUFLEET_GATEWAY_PORT", "8080"))
    gateways = gateway_addresses(env.get("GPUFLEET_GATEWAY_HOST", "gpufleet-gateway"), port)
    timeout_s = float(env.get("DRAIN_TIMEOUT_S", "90"))
    done = drain(gateways, endpoint_url, timeout_s, float(env.get("DRAIN_POLL_S", "1")))
    print(f"drain: {endpoint_url} {'drained' if done else 'timed out'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
