"""The request path: parse → resolve model → route → forward (with retries) → observe.

Retries: an attempt that fails before any byte reached the client (refused,
reset, first-byte timeout, a 5xx or 429 answer) is retried on another
replica, at most ``retry.max_attempts`` attempts in all and only while the
retry budget allows. A stale pooled connection is retried once on a fresh
connection to the same replica without counting. After the first byte, a
resumable stream (``retry.resume_streams``, see gateway/resumption.py) is
continued on another replica, at most ``retry.max_resumes`` times, each
spending the retry budget; any other failure ends the stream with an error
event and ``[DONE]``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import orjson

from gpufleet.api.server import Request, Responder
from gpufleet.api.validation import ParsedRequest, parse_body
from gpufleet.backends.client import fetch
from gpufleet.backends.connection import Timeouts
from gpufleet.backends.endpoint import LiveEndpoint
from gpufleet.config import FleetConfig, RequestClassConfig
from gpufleet.errors import (
    BackendError,
    BackendStatusError,
    BackendUnavailable,
    GpufleetError,
    InvalidRequest,
    NoCapacity,
    NotFound,
)
from gpufleet.gateway.access_log import AccessLog
from gpufleet.gateway.admission_gate import AdmissionGate
from gpufleet.gateway.decision_log import DecisionLog
from gpufleet.gateway.fleet import FleetState
from gpufleet.gateway.relay import (
    Outcome,
    RelaySink,
    Usage,
    end_stream_done,
    end_with_error,
    usage_from_json,
)
from gpufleet.gateway.response_cache import (
    MemoryResponseStore,
    RedisResponseStore,
    ResponseStore,
    cache_key,
    fresh_copy,
    replay_as_stream,
    response_from_stream,
)
from gpufleet.gateway.resumption import (
    StreamProgress,
    continuation_body,
    length_finish_event,
    not_resumable,
)
from gpufleet.gateway.retry_budget import RetryBudget
from gpufleet.metrics import EndpointMetrics, GatewayMetrics
from gpufleet.prompt_text import request_prompt_text
from gpufleet.routing.profile import RoutingProfile
from gpufleet.tenancy.guard import Lease, TenancyGuard
from gpufleet.types import RouteRequest, RoutingDecision

_SSE_HEADERS = b"content-type: text/event-stream\r\ncache-control: no-cache\r\n"
UPSTREAM_PATHS = {
    "chat": b"/v1/chat/completions",
    "completions": b"/v1/completions",
    "embeddings": b"/v1/embeddings",
}
_SAFE_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


class _StreamCut(Exception):
    """A resumable stream lost its replica after bytes reached the client."""


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """What a requested model name resolves to."""

    model: str
    adapter: str | None


def resolve_names(config: FleetConfig) -> dict[str, ModelTarget]:
    """Every name a client may send → canonical model (and LoRA adapter)."""
    names: dict[str, ModelTarget] = {}
    for model in config.models:
        for adapter in model.lora_adapters:
            names[adapter] = ModelTarget(model.name, adapter)
        for alias in (model.name, *model.aliases):
            names[alias] = ModelTarget(model.name, None)
    return names


class Proxy:
    def __init__(
        self,
        config: FleetConfig,
        fleet: FleetState,
        profile: RoutingProfile,
        metrics: GatewayMetrics,
        access_log: AccessLog,
    ):
        self.config = config
        self.fleet = fleet
        self.profile = profile
        self.metrics = metrics
        self.access_log = access_log
        self.names = resolve_names(config)
        self.retry_budget = RetryBudget(config.retry)
        t = config.timeouts
        self.timeouts = Timeouts(t.connect_s, t.first_byte_s, t.idle_s, t.total_s)
        self._id_prefix = os.urandom(4).hex()
        self._next_id = 0
        self._heads: dict[tuple[str, str], bytes] = {}
        self._wants_text = profile.uses_prompt_text
        self._tenant_header = config.admission.tenant_header
        self.response_cache = _response_store(config)
        """``None`` unless ``response_cache.enabled``."""
        self.tenancy: TenancyGuard | None = None
        """Set by the service when API keys are on; ``None`` keeps the gateway open."""
        self.decisions = DecisionLog()  # the fleet page: the last routing decisions
        self.gate: AdmissionGate | None = None
        if config.admission.enabled:
            self.gate = AdmissionGate(
                config.admission,
                lambda route: self._route(route, []),
                lambda model: any(e.routable for e in fleet.by_model.get(model, ())),
                fleet.load_version,
                metrics.queue_shed.inc,
            )

    def request_id(self, request: Request) -> str:
        given = request.headers.get("x-request-id")
        if given and len(given) <= 128 and set(given) <= _SAFE_ID:
            return given
        self._next_id += 1
        return f"{self._id_prefix}-{self._next_id:x}"

    async def handle(self, kind: str, request: Request, responder: Responder) -> None:
        received = time.monotonic()
        # tenancy: authenticate before reading the body (401 before 400)
        guard = self.tenancy
        tenant = guard.authenticate(request.headers) if guard is not None else None
        request_id = self.request_id(request)
        parsed = parse_body(kind, request.body)
        target = self.names.get(parsed.model)
        if target is None:
            raise NotFound(
                f"The model `{parsed.model}` does not exist. "
                f"Valid models: {', '.join(sorted(self.names))}.",
                param="model",
            )
        headers = request.headers
        class_name, request_class, priority, deadline_s = self._request_class(headers, received)
        if tenant is not None and tenant.priority is not None:  # tenancy: the tenant's band
            priority = (
                min(priority, tenant.priority) if "x-priority" in headers else tenant.priority
            )
        route = RouteRequest(
            model=target.model,
            adapter=target.adapter,
            session_key=headers.get("x-session-id") or parsed.user,
            prompt_tokens=parsed.prompt_chars // 4,
            max_tokens=parsed.max_tokens,
            prompt_text=request_prompt_text(kind, parsed.body) if self._wants_text else "",
            priority=priority,
            ttft_target_s=request_class.ttft_target_s,
        )
        tenant_name = tenant.name if tenant else headers.get(self._tenant_header) or "default"
        key = None
        if self.response_cache is not None:  # before the body is rewritten for the engine
            key = cache_key(tenant_name, kind, target.adapter or target.model, parsed.body)
        body, strip_usage = self._upstream_body(parsed, target, request.body)
        progress: StreamProgress | None = None
        if (
            parsed.stream
            and self.config.retry.resume_streams
            and not_resumable(kind, parsed.body) is None
        ):
            progress = StreamProgress(kind)
        debug = self.config.gateway.debug_header and request.headers.get("x-gpufleet-debug") == "1"
        self.retry_budget.record_request(received)
        record: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "request_id": request_id,
            "path": request.path,
            "model": target.model,
            "stream": parsed.stream,
            "class": class_name,
            "priority": priority,
        }
        outcome = "error"
        lease: Lease | None = None
        if guard is not None and tenant is not None:  # tenancy: 403 / 429 / 503
            lease = await guard.admit(tenant, parsed.model, target.model)
            record["tenant"] = tenant.name
        capture: list[bytes] | None = [] if key is not None else None
        try:
            if key is not None and await self._serve_cached(
                key, target.model, parsed, request_id, responder
            ):
                outcome = "cache_hit"
                return
            outcome = await self._forward(
                kind, route, body, strip_usage, debug, request_id, responder, record, received,
                tenant_name, deadline_s, progress, parsed.body, capture,
            )  # fmt: skip
            if key is not None and outcome == Outcome.OK:
                await self._fill_cache(key, kind, target.model, capture, progress, record)
        except GpufleetError as exc:
            if not responder.started:
                raise
            # a resumption that found no replica in time: close the stream well-formed
            end_with_error(responder, f"the stream could not be resumed: {exc}")
            outcome = Outcome.BROKEN
        finally:
            if lease is not None and guard is not None:  # tenancy: usage, slot release
                guard.settle(
                    lease,
                    target.model,
                    record.get("prompt_tokens", 0),
                    record.get("completion_tokens", 0),
                )
            record["outcome"] = outcome
            record["e2e_ms"] = round((time.monotonic() - received) * 1000, 3)
            self.metrics.outcome(target.model, outcome)
            self.access_log.write(record)

    def _upstream_body(
        self, parsed: ParsedRequest, target: ModelTarget, raw: bytes
    ) -> tuple[bytes, bool]:
        """The body sent to the engine: the client's bytes unless the model is an alias
        or usage must be requested on the client's behalf (then re-serialised)."""
        rewrite = False
        body = parsed.body
        served = target.adapter or target.model
        if parsed.model != served:
            body["model"] = served
            rewrite = True
        strip_usage = parsed.stream and not parsed.wants_usage and parsed.kind != "embeddings"
        if strip_usage:
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            body["stream_options"] = options
            rewrite = True
        return (orjson.dumps(body) if rewrite else raw), strip_usage

    async def _forward(
        self,
        kind: str,
        route: RouteRequest,
        body: bytes,
        strip_usage: bool,
        debug: bool,
        request_id: str,
        responder: Responder,
        record: dict[str, Any],
        received: float,
        tenant: str,
        deadline_s: float,
        progress: StreamProgress | None,
        upstream_body: dict[str, Any],
        capture: list[bytes] | None = None,
    ) -> str:
        tried: list[LiveEndpoint] = []
        last_error: BackendError | None = None
        gate = self.gate
        retry = self.config.retry
        attempt = 0
        resumes = 0
        resume_pending = False
        while attempt < retry.max_attempts:
            attempt += 1
            if attempt == 1 and resumes == 0 and gate is not None and gate.has_waiting(route.model):
                decision: RoutingDecision | None = await self._queue(
                    route, tenant, deadline_s, record
                )
            else:
                decision = self._route(route, tried)
                if decision is None and gate is not None:
                    # every other replica is saturated for now (e.g. a dead replica's load
                    # just moved over): wait in the admission queue rather than fail
                    decision = await self._queue(route, tenant, deadline_s, record)
            if decision is None:
                break
            endpoint = decision.endpoint
            assert isinstance(endpoint, LiveEndpoint)
            record["endpoint"] = endpoint.id
            record["attempts"] = attempt
            if resume_pending:
                assert progress is not None
                sent = await self._count_tokens(endpoint, upstream_body, progress)
                continuation = continuation_body(kind, upstream_body, progress, sent)
                if continuation is None:  # the cut came right after the last token
                    end_stream_done(responder, length_finish_event(kind, progress, route.model))
                    return Outcome.OK
                progress.begin_resume(sent)
                body = orjson.dumps(continuation)
                resume_pending = False
            try:
                return await self._attempt(
                    kind, route, endpoint, body, strip_usage, debug, decision, request_id,
                    responder, record, received, progress, capture,
                )  # fmt: skip
            except _StreamCut:
                assert progress is not None
                tried.append(endpoint)
                now = time.monotonic()
                endpoint.record_failure(now)
                self.metrics.for_endpoint(
                    route.model, endpoint.pool, endpoint.gpu, endpoint.id
                ).retries.inc()
                resumes += 1
                record["resumes"] = resumes
                if progress.finished:  # only [DONE] (and usage) were lost
                    end_stream_done(responder)
                    return Outcome.OK
                if resumes > retry.max_resumes or not self.retry_budget.try_spend(now):
                    end_with_error(responder, "the replica failed mid-stream; not resumed")
                    return Outcome.BROKEN
                resume_pending = True
                attempt = 0
                last_error = None
            except BackendError as exc:
                last_error = exc
                tried.append(endpoint)
                self.metrics.for_endpoint(
                    route.model, endpoint.pool, endpoint.gpu, endpoint.id
                ).retries.inc()
                if endpoint.record_failure(time.monotonic()):
                    record["ejected"] = endpoint.id
                if not self.retry_budget.try_spend(time.monotonic()):
                    break
        if responder.started:  # a cut stream that no replica could continue
            end_with_error(
                responder, f"the replica failed mid-stream and no replica could resume it: "
                f"{last_error or 'no healthy replica'}"
            )  # fmt: skip
            return Outcome.BROKEN
        if last_error is None:
            raise NoCapacity(f"no healthy replica serves model `{route.model}`; retry later")
        if isinstance(last_error, BackendStatusError):
            record["status"] = last_error.status
            responder.send(last_error.status, _json_headers(request_id), last_error.body)
            return "upstream_error"
        raise last_error

    async def _serve_cached(
        self, key: str, model: str, parsed: ParsedRequest, request_id: str, responder: Responder
    ) -> bool:
        """Answer from the response cache; False on a miss."""
        assert self.response_cache is not None
        cached = await self.response_cache.get(key)
        counter = self.metrics.response_cache
        if cached is None:
            counter.labels(model, "miss").inc()
            return False
        counter.labels(model, "hit").inc()
        response = fresh_copy(cached, request_id)
        headers = b"x-request-id: %s\r\nx-gpufleet-cache: hit\r\n" % request_id.encode()
        if parsed.stream:
            events = replay_as_stream(response, parsed.wants_usage)
            responder.start_stream(200, _SSE_HEADERS + headers)
            responder.end_stream(events)
        else:
            responder.send(
                200, b"content-type: application/json\r\n" + headers, orjson.dumps(response)
            )
        return True

    async def _fill_cache(
        self,
        key: str,
        kind: str,
        model: str,
        capture: list[bytes] | None,
        progress: StreamProgress | None,
        record: dict[str, Any],
    ) -> None:
        """Store a successful answer: the JSON body, or what a completed stream amounted to."""
        assert self.response_cache is not None
        value: bytes | None = capture[-1] if capture else None
        if value is None and progress is not None:
            prompt, completion = record.get("prompt_tokens", 0), record.get("completion_tokens", 0)
            usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}  # fmt: skip
            value = response_from_stream(kind, progress, model, usage)
        if value is None or len(value) > self.config.response_cache.max_response_bytes:
            return
        await self.response_cache.put(key, value)
        self.metrics.response_cache.labels(model, "store").inc()

    async def _count_tokens(
        self, endpoint: LiveEndpoint, upstream_body: dict[str, Any], progress: StreamProgress
    ) -> int:
        """Tokens in the text streamed so far, by the continuing replica's ``/tokenize``
        (events undercount when an engine coalesces tokens); the event count if that fails."""
        payload = {"model": upstream_body.get("model"), "prompt": progress.text}
        payload["add_special_tokens"] = False
        try:
            status, _, answer = await fetch(
                endpoint.pool_connections, endpoint.host_header, "POST",
                endpoint.base_path + "/tokenize", self.timeouts.first_byte_s,
                orjson.dumps(payload),
            )  # fmt: skip
            if status == 200:
                count = orjson.loads(answer).get("count")
                if isinstance(count, int) and count >= 0:
                    return count
        except (BackendError, orjson.JSONDecodeError, AttributeError):
            pass
        return progress.num_events

    async def _queue(
        self, route: RouteRequest, tenant: str, deadline_s: float, record: dict[str, Any]
    ) -> RoutingDecision:
        assert self.gate is not None
        queued = time.monotonic()
        try:
            return await self.gate.wait(route, tenant, deadline_s)
        finally:
            record["queue_ms"] = round((time.monotonic() - queued) * 1000, 3)

    def _request_class(
        self, headers: dict[str, str], now_s: float
    ) -> tuple[str, RequestClassConfig, int, float]:
        """The request's class (name and config), priority band and absolute queue
        deadline, from headers."""
        admission = self.config.admission
        name = headers.get("x-request-class") or admission.default_class
        request_class = admission.classes.get(name)
        if request_class is None:
            raise InvalidRequest(
                f"unknown request class {name!r} (x-request-class); "
                f"known: {', '.join(sorted(admission.classes))}",
                param="x-request-class",
            )
        priority = request_class.priority
        raw_priority = headers.get("x-priority")
        if raw_priority is not None:
            if not raw_priority.lstrip("-").isdigit() or abs(int(raw_priority)) > 1000:
                raise InvalidRequest(
                    "x-priority must be an integer between -1000 and 1000", param="x-priority"
                )
            priority = int(raw_priority)
        deadline_s = request_class.deadline_s
        raw_deadline = headers.get("x-request-deadline-ms")
        if raw_deadline is not None:
            if not raw_deadline.isdigit() or int(raw_deadline) == 0:
                raise InvalidRequest(
                    "x-request-deadline-ms must be a positive integer",
                    param="x-request-deadline-ms",
                )
            deadline_s = min(deadline_s, int(raw_deadline) / 1000)
        return name, request_class, priority, now_s + deadline_s

    def _route(self, route: RouteRequest, tried: list[LiveEndpoint]) -> RoutingDecision | None:
        endpoints = self.fleet.by_model.get(route.model, ())
        if tried:
            endpoints = [e for e in endpoints if e not in tried]
        start = time.perf_counter()
        decision = self.profile.decide(route, endpoints)
        self.metrics.decision_latency_for(route.model).observe(time.perf_counter() - start)
        self.decisions.record(route, decision)
        return decision

    async def _attempt(
        self,
        kind: str,
        route: RouteRequest,
        endpoint: LiveEndpoint,
        body: bytes,
        strip_usage: bool,
        debug: bool,
        decision: RoutingDecision,
        request_id: str,
        responder: Responder,
        record: dict[str, Any],
        received: float,
        progress: StreamProgress | None = None,
        capture: list[bytes] | None = None,
    ) -> str:
        children = self.metrics.for_endpoint(
            endpoint.spec.model, endpoint.pool, endpoint.gpu, endpoint.id
        )
        extra = b""
        if debug:
            extra = b"x-gpufleet-endpoint: %s\r\nx-gpufleet-decision: %s\r\n" % (
                endpoint.id.encode(),
                decision.explain().encode(),
            )
        stream_headers = _SSE_HEADERS + b"x-request-id: %s\r\n%s" % (request_id.encode(), extra)
        head = self._head(kind, endpoint) + b"content-length: %d\r\nx-request-id: %s\r\n\r\n" % (
            len(body),
            request_id.encode(),
        )
        endpoint.on_dispatch(route)
        contexts = self.profile.on_dispatch(route, endpoint)
        children.in_flight.inc()
        try:
            result = await self._exchange(
                endpoint, head + body, responder, stream_headers, strip_usage, children, progress
            )
        finally:
            endpoint.on_complete(route)
            children.in_flight.dec()
            if self.gate is not None and self.gate.has_waiting(route.model):
                self.gate.pump(route.model)
        sink, value = result
        now = time.monotonic()
        usage = sink.usage if not isinstance(value, tuple) else usage_from_json(value[2])
        if usage.prompt_tokens:
            self.profile.on_complete(endpoint, contexts, usage.cached_tokens)
        if isinstance(value, tuple):
            status, headers, payload = value
            if status >= 500 or status == 429:
                raise BackendStatusError(
                    f"replica answered {status}",
                    status=status,
                    body=payload,
                    endpoint_id=endpoint.id,
                )
            endpoint.record_success()
            if responder.started:  # a continuation refused (e.g. prompt + text too long)
                reason = payload[:300].decode(errors="replace")
                end_with_error(responder, f"resuming the stream failed: {reason}", status)
                return "upstream_error"
            record["status"] = status
            content_type = headers.get("content-type", "application/json").encode()
            responder.send(
                status,
                b"content-type: %s\r\nx-request-id: %s\r\n%s"
                % (content_type, request_id.encode(), extra),
                payload,
            )
            if status == 200:
                if capture is not None:
                    capture.append(payload)
                self._observe_usage(children, record, usage)
                children.e2e.observe(now - received)
                return "ok"
            return "client_error"
        record["status"] = 200
        outcome = str(value)
        if outcome == Outcome.CUT:
            raise _StreamCut(endpoint.id)
        if outcome == Outcome.OK:
            endpoint.record_success()
        elif outcome == Outcome.BROKEN:
            endpoint.record_failure(now)
        if sink.first_chunk_at and "ttft_ms" not in record:
            ttft = sink.first_chunk_at - received
            children.ttft.observe(ttft)
            record["ttft_ms"] = round(ttft * 1000, 3)
        self._observe_usage(children, record, usage)
        children.e2e.observe(now - received)
        return outcome

    async def _exchange(
        self,
        endpoint: LiveEndpoint,
        data: bytes,
        responder: Responder,
        stream_headers: bytes,
        strip_usage: bool,
        children: EndpointMetrics,
        progress: StreamProgress | None = None,
    ) -> tuple[RelaySink, object]:
        """Send ``data`` on a pooled connection; a stale reused connection is retried once."""
        itl = children.itl
        for fresh_retry in (False, True):
            conn = await endpoint.pool_connections.acquire(self.timeouts.connect_s)
            sink = RelaySink(
                responder,
                stream_headers,
                strip_usage,
                lambda gap, _now: itl.observe(gap),
                progress,
            )
            sink.conn = conn
            callbacks = responder.disconnect_callbacks
            callbacks.append(sink.client_gone)
            try:
                conn.send(data, sink, self.timeouts)
                return sink, await sink.result
            except BackendUnavailable as exc:
                if fresh_retry or not exc.stale_connection:
                    raise
            finally:
                if sink.client_gone in callbacks:
                    callbacks.remove(sink.client_gone)
                if not sink.result.done():
                    conn.abort()
        raise AssertionError("unreachable")

    def _head(self, kind: str, endpoint: LiveEndpoint) -> bytes:
        key = (kind, endpoint.id)
        head = self._heads.get(key)
        if head is None:
            path = endpoint.base_path.encode() + UPSTREAM_PATHS[kind]
            head = b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n" % (
                path,
                endpoint.host_header,
            )
            self._heads[key] = head
        return head

    @staticmethod
    def _observe_usage(children: EndpointMetrics, record: dict[str, Any], usage: Usage) -> None:
        if usage.prompt_tokens:
            children.prompt_tokens.inc(usage.prompt_tokens)
            record["prompt_tokens"] = usage.prompt_tokens
            record["cached_tokens"] = usage.cached_tokens
        if usage.completion_tokens:
            children.generation_tokens.inc(usage.completion_tokens)
            record["completion_tokens"] = usage.completion_tokens


def _response_store(config: FleetConfig) -> ResponseStore | None:
    settings = config.response_cache
    if not settings.enabled:
        return None
    if settings.store == "memory":
        return MemoryResponseStore(settings.ttl_s, settings.max_entries)
    url = settings.redis_url or config.tenancy.redis.url
    return RedisResponseStore(url, settings.prefix, settings.ttl_s, settings.timeout_s)


def _json_headers(request_id: str) -> bytes:
    return b"content-type: application/json\r\nx-request-id: %s\r\n" % request_id.encode()
