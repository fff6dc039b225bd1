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
from pathlib import Path
from typing import Any

import yaml
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
        self._add_routes(app)
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

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get(SLICES_PATH, self._endpointslices)

    async def close(self) -> None:
        self.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """Write `kubeconfig` to ``path`` as YAML; returns ``path``."""
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace)))
        return path

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


# -- control plane: nodes, pods, deployments and their scale (additive) -------------------------
NODES_PATH = "/api/v1/nodes"
PODS_PATH = "/api/v1/namespaces/{namespace}/pods"
POD_PATH = "/api/v1/namespaces/{namespace}/pods/{name}"
DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
SCALE_PATH = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"


@dataclass(frozen=True)
class ApiPatch:
    """One PATCH the server took: the object's path, the content type, the body."""

    path: str
    content_type: str
    body: dict[str, Any]


class FakeKubeCluster(FakeKubeApi):
    """`FakeKubeApi` plus what the controller uses: Nodes (list and watch, cluster-scoped),
    Pods (list by label and ``spec.nodeName`` field selector; merge PATCH), Deployments
    (GET) and their ``scale`` subresource (GET; merge PATCH sets ``spec.replicas``).
    Tests change nodes with ``apply_node`` (recorded as a watch event) and read
    ``patches``; ``fail_scale_with`` makes scale PATCHes answer that status."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[str, dict[str, Any]] = {}
        self.node_history: list[tuple[int, str, dict[str, Any]]] = []
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.patches: list[ApiPatch] = []
        self.fail_scale_with: int | None = None

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_get(NODES_PATH, self._nodes)
        app.router.add_get(PODS_PATH, self._pods)
        app.router.add_patch(POD_PATH, self._patch_pod)
        app.router.add_get(DEPLOYMENT_PATH, self._deployment)
        app.router.add_get(SCALE_PATH, self._scale)
        app.router.add_patch(SCALE_PATH, self._patch_scale)

    # -- changes ---------------------------------------------------------------------
    def apply_node(self, obj: dict[str, Any]) -> int:
        name = obj["metadata"]["name"]
        kind = "MODIFIED" if name in self.nodes else "ADDED"
        self.version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.nodes[name] = stored
        self.node_history.append((self.version, kind, copy.deepcopy(stored)))
        self._wake()
        return self.version

    def add_pod(self, obj: dict[str, Any]) -> None:
        self.pods[_key(obj)] = copy.deepcopy(obj)

    def add_deployment(self, obj: dict[str, Any]) -> None:
        self.deployments[_key(obj)] = copy.deepcopy(obj)

    def replicas(self, namespace: str, name: str) -> int:
        return int(self.deployments[(namespace, name)]["spec"]["replicas"])

    # -- HTTP ------------------------------------------------------------------------
    async def _nodes(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        watch = query.get("watch", "").lower() in ("true", "1")
        self.requests.append(
            ApiRequest("watch" if watch else "list", "", query.get("resourceVersion"), None)
        )
        if not watch:
            return _json(
                {
                    "apiVersion": "v1",
                    "kind": "NodeList",
                    "metadata": {"resourceVersion": str(self.version)},
                    "items": [copy.deepcopy(n) for _, n in sorted(self.nodes.items())],
                }
            )
        since = int(query.get("resourceVersion") or self.version)
        timeout_s = float(query.get("timeoutSeconds") or 300)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        drops = self._drops
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        sent = since
        while True:
            for version, kind, obj in list(self.node_history):
                if version > sent:
                    sent = version
                    await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
            if self._drops != drops:
                assert request.transport is not None
                request.transport.abort()
                return response
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                break
        await response.write_eof()
        return response

    async def _pods(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        labels = _parse_selector(request.query.get("labelSelector", ""))
        fields = _parse_selector(request.query.get("fieldSelector", ""))
        self.requests.append(
            ApiRequest("list-pods", namespace, None, request.query.get("fieldSelector"))
        )
        items = [
            copy.deepcopy(pod)
            for (ns, _), pod in sorted(self.pods.items())
            if ns == namespace
            and _matches(pod, labels)
            and all(_field(pod, path) == value for path, value in fields.items())
        ]
        return _json(
            {
                "apiVersion": "v1",
                "kind": "PodList",
                "metadata": {"resourceVersion": str(self.version)},
                "items": items,
            }
        )

    async def _patch_pod(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["namespace"], request.match_info["name"])
        body = await self._record_patch(request)
        pod = self.pods.get(key)
        if pod is None:
            return _not_found(f'pods "{key[1]}" not found')
        _merge(pod, body)
        return _json(pod)

    async def _deployment(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["namespace"], request.match_info["name"])
        deployment = self.deployments.get(key)
        if deployment is None:
            return _not_found(f'deployments.apps "{key[1]}" not found')
        return _json(deployment)

    async def _scale(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["namespace"], request.match_info["name"])
        deployment = self.deployments.get(key)
        if deployment is None:
            return _not_found(f'deployments.apps "{key[1]}" not found')
        return _json(_scale_of(deployment))

    async def _patch_scale(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["namespace"], request.match_info["name"])
        body = await self._record_patch(request)
        if self.fail_scale_with is not None:
            return _json(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                 "message": "injected failure", "code": self.fail_scale_with},
                status=self.fail_scale_with,
            )  # fmt: skip
        deployment = self.deployments.get(key)
        if deployment is None:
            return _not_found(f'deployments.apps "{key[1]}" not found')
        replicas = body.get("spec", {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            return _json(
                {"kind": "Status", "status": "Failure", "message": "bad replicas", "code": 422},
                status=422,
            )
        deployment["spec"]["replicas"] = replicas
        return _json(_scale_of(deployment))

    async def _record_patch(self, request: web.Request) -> dict[str, Any]:
        body = json.loads(await request.read() or b"{}")
        self.patches.append(ApiPatch(request.path, request.content_type, body))
        return body  # type: ignore[no-any-return]


def node(name: str, taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A Node object, with ``taints`` (dicts of key, effect and optionally value)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"taints": list(taints or [])},
    }


def engine_pod(name: str, namespace: str, node_name: str, labels: dict[str, str]) -> dict[str, Any]:
    """An engine Pod scheduled on ``node_name``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"nodeName": node_name, "containers": [{"name": "vllm", "image": "vllm"}]},
        "status": {"phase": "Running"},
    }


def deployment(name: str, namespace: str, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "vllm", "image": "vllm"}]}}},
        "status": {"replicas": replicas, "readyReplicas": ready},
    }  # fmt: skip


def _scale_of(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"replicas": deployment["spec"]["replicas"]},
        "status": {"replicas": deployment.get("status", {}).get("replicas", 0)},
    }


def _not_found(message: str) -> web.Response:
    return _json(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
         "reason": "NotFound", "code": 404},
        status=404,
    )  # fmt: skip


def _field(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386) of ``patch`` into ``target``."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    """A JSON answer typed exactly ``application/json``, as the API server sends it
    (lightkube only decodes error Statuses of that content type)."""
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"}
    )
