"""A tiny Kubernetes API server for EndpointSlices: list and watch over plain HTTP.

It speaks the parts of the protocol a list/watch client relies on:

- ``GET /apis/discovery.k8s.io/v1/namespaces/NS/endpointslices?labelSelector=a=b,c=d``
  → an ``EndpointSliceList`` whose ``metadata.resourceVersion`` is the store's version;
- the same with ``watch=true&resourceVersion=RV`` → a chunked stream of JSON lines
  ``{"type": ADDED|MODIFIED|DELETED, "object": ...}`` for every change after RV, then
  the live changes, until ``timeoutSeconds`` ends it cleanly;
- a watch from a resourceVersion older than the retained history (``compact``) gets
  ``410 Gone``: an ERROR event carrying a Status (what a real API server sends), or an
  HTTP 410 response (``gone_as_http``);
- ``drop_watches`` aborts every open watch connection mid-stream.

Tests change the store with ``apply``/``delete`` (recorded as events) or
``apply_silently``/``delete_silently`` (no event: what a client misses during an outage),
and inspect ``requests`` to see lists, watches and the resourceVersions used.
Runs on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

SLICES_PATH = "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"


@dataclass(frozen=True)
class ApiRequest:
    kind: str
    """``list`` or ``watch``."""
    namespace: str
    resource_version: str | None
    label_selector: str | None


class FakeKubeApi:
    def __init__(self) -> None:
        self.store: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 1000
        self.history: list[tuple[int, str, dict[str, Any]]] = []
        self.oldest_version = 0
        self.gone_as_http = False
        self.requests: list[ApiRequest] = []
        self._changed = asyncio.Event()
        self._drops = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> int:
        app = web.Application()
        app.router.add_get(SLICES_PATH, self._endpointslices)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = int(server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        self.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "fake", "user": {"token": "test-token"}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }

    # -- changes ---------------------------------------------------------------------
    def apply(self, obj: dict[str, Any]) -> int:
        """Create or replace a slice, recording ADDED or MODIFIED; returns its version."""
        key = _key(obj)
        kind = "MODIFIED" if key in self.store else "ADDED"
        stored = self.apply_silently(obj)
        self._record(kind, stored)
        return self.version

    def delete(self, namespace: str, name: str) -> int:
        obj = self.delete_silently(namespace, name)
        obj["metadata"]["resourceVersion"] = str(self.version)
        self._record("DELETED", obj)
        return self.version

    def apply_silently(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(obj)
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.store[_key(stored)] = stored
        return stored

    def delete_silently(self, namespace: str, name: str) -> dict[str, Any]:
        self.version += 1
        return self.store.pop((namespace, name))

    def compact(self) -> None:
        """Forget the history: watches from any version seen so far get 410 Gone."""
        self.history.clear()
        self.oldest_version = self.version + 1

    def drop_watches(self) -> None:
        self._drops += 1
        self._wake()

    def count(self, kind: str) -> int:
        return sum(1 for r in self.requests if r.kind == kind)

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        self.history.append((self.version, kind, copy.deepcopy(obj)))
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- HTTP ------------------------------------------------------------------------
    async def _endpointslices(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        query = request.query
        watch = query.get("watch", "").lower() in ("true", "1")
        record = ApiRequest(
            "watch" if watch else "list",
            namespace,
            query.get("resourceVersion"),
            query.get("labelSelector"),
        )
        self.requests.append(record)
        selector = _parse_selector(query.get("labelSelector", ""))
        if not watch:
            items = [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(self.store.items())
                if ns == namespace and _matches(obj, selector)
            ]
            return web.json_response(
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSliceList",
                    "metadata": {"resourceVersion": str(self.version)},
                    "items": items,
                }
            )
        since = int(query.get("resourceVersion") or self.version)
        timeout_s = float(query.get("timeoutSeconds") or 300)
        if since < self.oldest_version - 1:
            return await self._gone(request)
        return await self._stream(request, namespace, selector, since, timeout_s)

    async def _gone(self, request: web.Request) -> web.StreamResponse:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "too old resource version",
            "reason": "Expired",
            "code": 410,
        }
        if self.gone_as_http:
            return web.json_response(status, status=410)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
        await response.write_eof()
        return response

    async def _stream(
        self,
        request: web.Request,
        namespace: str,
        selector: dict[str, str],
        since: int,
        timeout_s: float,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        drops = self._drops
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        sent = since
        while True:
            for version, kind, obj in list(self.history):
                if version <= sent:
                    continue
                sent = version
                if obj["metadata"].get("namespace") == namespace and _matches(obj, selector):
                    line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                    await response.write(line)
            if self._drops != drops:
                assert request.transport is not None
                request.transport.abort()
                return response
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                break
        await response.write_eof()
        return response


def endpoint_slice(
    name: str,
    namespace: str,
    labels: dict[str, str],
    endpoints: list[dict[str, Any]],
    port: int = 8000,
) -> dict[str, Any]:
    """An EndpointSlice object as the API serves it."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    }


def pod_endpoint(
    pod: str, ip: str, *, ready: bool = True, terminating: bool = False
) -> dict[str, Any]:
    """One entry of an EndpointSlice's ``endpoints``."""
    return {
        "addresses": [ip],
        "conditions": {"ready": ready, "serving": ready or terminating, "terminating": terminating},
        "targetRef": {"kind": "Pod", "name": pod, "namespace": "default"},
    }


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", "default"), meta["name"])


def _parse_selector(text: str) -> dict[str, str]:
    pairs = [part.split("=", 1) for part in text.split(",") if part]
    return {key.strip(): value.strip().lstrip("=") for key, value in pairs}


def _matches(obj: dict[str, Any], selector: dict[str, str]) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())
