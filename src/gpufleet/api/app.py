"""The gateway's HTTP routes.

OpenAI surface: ``POST /v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``, ``GET /v1/models``. Operations: ``/health`` (liveness),
``/ready`` (every configured model has a routable replica), ``/metrics``.
Admin (when ``gateway.admin_enabled``): ``GET /admin/endpoints``,
``POST /admin/drain`` and ``/admin/undrain`` with ``{"endpoint": ID-or-URL}``,
``GET /admin/usage`` (per-tenant usage); while API keys are on, ``/admin/*`` needs the
admin key. ``GET /openapi.json``: the OpenAPI 3 document of these routes.
The fleet page (admin, see ``api/dashboard.py``): ``GET /dashboard``, the JSON it polls at
``GET /dashboard/fleet``, also at ``GET /admin/fleet``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from importlib.resources import files

import orjson

from gpufleet.api.dashboard import Dashboard
from gpufleet.api.errors import error_body, error_response
from gpufleet.api.server import Request, Responder
from gpufleet.errors import GpufleetError, InvalidRequest, MethodNotAllowed, NotFound
from gpufleet.gateway.proxy import Proxy

log = logging.getLogger("gpufleet.api")
JSON = b"content-type: application/json\r\n"
Route = Callable[[Request, Responder], Awaitable[None]]


class GatewayApp:
    def __init__(self, proxy: Proxy):
        self.proxy = proxy
        self.created = int(time.time())
        self._routes: dict[tuple[str, str], Route] = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/completions"): self._completions,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("GET", "/v1/models"): self._models,
            ("GET", "/health"): self._health,
            ("GET", "/ready"): self._ready,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/openapi.json"): self._openapi,
        }
        self._openapi_doc = files("gpufleet").joinpath("data/openapi.json").read_bytes()
        if proxy.config.gateway.admin_enabled:
            self._routes[("GET", "/admin/endpoints")] = self._admin_endpoints
            self._routes[("POST", "/admin/drain")] = self._admin_drain
            self._routes[("POST", "/admin/undrain")] = self._admin_undrain
            self._routes[("GET", "/admin/usage")] = self._admin_usage
            dashboard = Dashboard(proxy)  # the fleet page and its JSON
            self._routes[("GET", "/dashboard")] = dashboard.page
            self._routes[("GET", "/dashboard/fleet")] = dashboard.data
            self._routes[("GET", "/admin/fleet")] = dashboard.data
        self._paths = {path for _, path in self._routes}

    def routes(self) -> frozenset[tuple[str, str]]:
        """(method, path) of every route served (the ones /openapi.json documents)."""
        return frozenset(self._routes)

    def add_admin_route(self, method: str, path: str, handler: JsonHandler) -> None:
        """Serve a JSON admin route added at runtime (``gpufleet up --autoscale`` adds
        ``POST /admin/preempt``); it needs the admin key like every ``/admin`` route."""
        if not path.startswith("/admin/"):
            raise ValueError(f"admin routes live under /admin/, not {path!r}")
        self._routes[(method, path)] = json_route(handler)
        self._paths.add(path)

    async def __call__(self, request: Request, responder: Responder) -> None:
        route = self._routes.get((request.method, request.path))
        try:
            if route is None:
                path = request.path.rstrip("/") or "/"
                route = self._routes.get((request.method, path))
                if route is None:
                    if path in self._paths:
                        raise MethodNotAllowed(f"method {request.method} is not allowed here")
                    raise NotFound(f"no route for {request.method} {request.path}", code=None)
            if self.proxy.tenancy is not None and request.path.startswith("/admin"):
                self.proxy.tenancy.check_admin(request.headers)  # tenancy: admin key
            await route(request, responder)
        except GpufleetError as exc:
            if responder.started:
                log.warning("error after the response started: %s", exc)
                return
            status, headers, body = error_response(exc)
            responder.send(status, headers, body)

    def on_handler_error(self, request: Request, exc: BaseException) -> None:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)

    # OpenAI -----------------------------------------------------------------------
    async def _chat(self, request: Request, responder: Responder) -> None:
        await self.proxy.handle("chat", request, responder)

    async def _completions(self, request: Request, responder: Responder) -> None:
        await self.proxy.handle("completions", request, responder)

    async def _embeddings(self, request: Request, responder: Responder) -> None:
        await self.proxy.handle("embeddings", request, responder)

    async def _models(self, request: Request, responder: Responder) -> None:
        data = []
        for name, target in sorted(self.proxy.names.items()):
            entry: dict[str, object] = {
                "id": name,
                "object": "model",
                "created": self.created,
                "owned_by": "gpufleet",
                "root": target.model,
                "parent": target.model if target.adapter else None,
                "max_model_len": self.proxy.config.model(target.model).context_length,
            }
            data.append(entry)
        responder.send(200, JSON, orjson.dumps({"object": "list", "data": data}))

    # operations ---------------------------------------------------------------------
    async def _health(self, request: Request, responder: Responder) -> None:
        responder.send(200, JSON, b'{"status":"ok"}')

    async def _ready(self, request: Request, responder: Responder) -> None:
        models = [m.name for m in self.proxy.config.models]
        ready = self.proxy.fleet.ready_models(models)
        status = 200 if all(ready.values()) else 503
        responder.send(status, JSON, orjson.dumps({"ready": status == 200, "models": ready}))

    async def _metrics(self, request: Request, responder: Responder) -> None:
        self.proxy.access_log.flush()
        gate = self.proxy.gate
        if gate is not None:
            self.proxy.metrics.set_queue_depth(gate.depth())
        self.proxy.metrics.set_endpoint_health(
            [
                ((e.spec.model, e.pool, e.gpu, e.id), e.routable)
                for e in self.proxy.fleet.endpoints.values()
            ]
        )
        responder.send(
            200,
            b"content-type: text/plain; version=0.0.4; charset=utf-8\r\n",
            self.proxy.metrics.exposition(),
        )

    async def _openapi(self, request: Request, responder: Responder) -> None:
        responder.send(200, JSON, self._openapi_doc)

    # admin ------------------------------------------------------------------------
    async def _admin_usage(self, request: Request, responder: Responder) -> None:
        guard = self.proxy.tenancy
        usage = await guard.usage() if guard is not None else {"scope": "off", "tenants": {}}
        responder.send(200, JSON, orjson.dumps(usage))

    async def _admin_endpoints(self, request: Request, responder: Responder) -> None:
        endpoints = [e.describe() for e in self.proxy.fleet.endpoints.values()]
        responder.send(200, JSON, orjson.dumps({"endpoints": endpoints}))

    async def _admin_drain(self, request: Request, responder: Responder) -> None:
        self._set_draining(request, responder, True)

    async def _admin_undrain(self, request: Request, responder: Responder) -> None:
        self._set_draining(request, responder, False)

    def _set_draining(self, request: Request, responder: Responder, draining: bool) -> None:
        try:
            body = orjson.loads(request.body or b"{}")
        except orjson.JSONDecodeError:
            raise InvalidRequest("the request body is not valid JSON") from None
        key = body.get("endpoint") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise InvalidRequest("'endpoint' (an endpoint id or URL) is required", param="endpoint")
        endpoint = self.proxy.fleet.find(key)
        if endpoint is None:
            raise NotFound(f"no endpoint {key!r}", param="endpoint", code="endpoint_not_found")
        endpoint.draining = draining
        log.warning("endpoint %s %s", endpoint.id, "draining" if draining else "undrained")
        responder.send(200, JSON, orjson.dumps(endpoint.describe()))


# -- control plane (additive) ---------------------------------------------------------
JsonHandler = Callable[[dict[str, object]], Awaitable[dict[str, object]]]
"""Takes the request's JSON object, returns the answer's; raises a GpufleetError to refuse."""


def json_route(handler: JsonHandler) -> Route:
    """A route whose request and answer bodies are JSON objects."""

    async def route(request: Request, responder: Responder) -> None:
        try:
            body = orjson.loads(request.body or b"{}")
        except orjson.JSONDecodeError:
            raise InvalidRequest("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object")
        responder.send(200, JSON, orjson.dumps(await handler(body)))

    return route


class ControlPlaneApp:
    """The controller's own HTTP surface: ``GET /health``, ``GET /metrics`` (its
    decisions) and the JSON routes it registers (``POST /admin/preempt``)."""

    def __init__(self, exposition: Callable[[], bytes], routes: dict[tuple[str, str], JsonHandler]):
        self._exposition = exposition
        self._routes: dict[tuple[str, str], Route] = {
            key: json_route(handler) for key, handler in routes.items()
        }
        self._routes[("GET", "/health")] = self._health
        self._routes[("GET", "/metrics")] = self._metrics

    async def __call__(self, request: Request, responder: Responder) -> None:
        path = request.path.rstrip("/") or "/"
        route = self._routes.get((request.method, path))
        try:
            if route is None:
                if any(p == path for _, p in self._routes):
                    raise MethodNotAllowed(f"method {request.method} is not allowed here")
                raise NotFound(f"no route for {request.method} {request.path}", code=None)
            await route(request, responder)
        except GpufleetError as exc:
            status, headers, body = error_response(exc)
            responder.send(status, headers, body)

    def on_handler_error(self, request: Request, exc: BaseException) -> None:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)

    async def _health(self, request: Request, responder: Responder) -> None:
        responder.send(200, JSON, b'{"status":"ok"}')

    async def _metrics(self, request: Request, responder: Responder) -> None:
        responder.send(
            200, b"content-type: text/plain; version=0.0.4; charset=utf-8\r\n", self._exposition()
        )


__all__ = ["GatewayApp", "error_body"]
