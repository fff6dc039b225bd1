"""The simulated replica's HTTP routes: vLLM's OpenAI surface over the engine driver.

``POST /v1/chat/completions`` and ``/v1/completions`` (streaming with tokens
emitted when the engine model produces them, and not), ``/v1/embeddings``,
``GET /v1/models``, ``/health``, ``/metrics``, ``/version``. Errors use
vLLM's bodies and statuses (400 bad request, 404 unknown model).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from gpufleet.api.server import Request, Responder
from gpufleet.engine.synthetic_text import synthetic_text
from gpufleet.prompt_text import render_chat, render_prompt
from gpufleet.replica import format as fmt
from gpufleet.replica.driver import EngineDriver
from gpufleet.replica.faults import Faults
from gpufleet.replica.metrics import ReplicaMetrics

JSON = b"content-type: application/json\r\n"
SSE = b"content-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.message, self.param, self.status = message, param, status


@dataclass
class ReplicaIdentity:
    served_names: tuple[str, ...]
    max_model_len: int
    root: str
    lora_adapters: tuple[str, ...] = ()


@dataclass
class _Choice:
    seed: int
    num_tokens: int = 0
    text: list[str] = field(default_factory=list)
    finish_reason: str | None = None


class ReplicaApp:
    def __init__(
        self,
        identity: ReplicaIdentity,
        driver: EngineDriver,
        metrics: ReplicaMetrics,
        faults: Faults,
        stream_interval: int = 1,
    ):
        self.stream_interval = stream_interval
        """Tokens per streamed chunk after the first (vLLM's ``--stream-interval``)."""
        self.identity = identity
        self.driver = driver
        self.metrics = metrics
        self.faults = faults
        self.started = time.monotonic()
        self.created = int(time.time())
        self._num_requests = 0
        self._num_streamed_tokens = 0
        self._num_ids = 0
        self._id_prefix = os.urandom(4).hex()
        self._models = set(identity.served_names) | set(identity.lora_adapters)

    async def __call__(self, request: Request, responder: Responder) -> None:
        path = request.path
        try:
            if request.method == "POST" and path == "/v1/chat/completions":
                await self._generate("chat", request, responder)
            elif request.method == "POST" and path == "/v1/completions":
                await self._generate("completions", request, responder)
            elif request.method == "POST" and path == "/v1/embeddings":
                self._embeddings(request, responder)
            elif request.method == "GET" and path == "/v1/models":
                self._list_models(responder)
            elif request.method == "POST" and path == "/tokenize":
                self._tokenize(request, responder)
            elif request.method == "GET" and path == "/health":
                self._health(responder)
            elif request.method == "GET" and path == "/metrics":
                responder.send(200, b"content-type: text/plain; version=0.0.4\r\n",
                               self.metrics.exposition())  # fmt: skip
            elif request.method == "GET" and path == "/version":
                responder.send(200, JSON, b'{"version":"0.32.0+gpufleet.sim"}')
            else:
                raise BadRequest("Not Found", status=404)
        except BadRequest as exc:
            error_type = "NotFoundError" if exc.status == 404 else "BadRequestError"
            responder.send(
                exc.status, JSON, fmt.error(exc.message, error_type, exc.status, exc.param)
            )

    def on_handler_error(self, request: Request, exc: BaseException) -> None:
        print(f"replica: unhandled error on {request.path}: {exc!r}", flush=True)

    # routes ------------------------------------------------------------------------
    def _health(self, responder: Responder) -> None:
        faults = self.faults
        starting = time.monotonic() - self.started < faults.slow_start_s
        if faults.unhealthy or starting:
            responder.send(503, JSON, b'{"status":"unavailable"}')
        else:
            responder.send(200, b"", b"")

    def _list_models(self, responder: Responder) -> None:
        ident = self.identity
        data = [
            {"id": name, "object": "model", "created": self.created, "owned_by": "vllm",
             "root": ident.root, "parent": None, "max_model_len": ident.max_model_len}
            for name in ident.served_names
        ] + [
            {"id": name, "object": "model", "created": self.created, "owned_by": "vllm",
             "root": name, "parent": ident.served_names[0], "max_model_len": ident.max_model_len}
            for name in ident.lora_adapters
        ]  # fmt: skip
        responder.send(200, JSON, orjson.dumps({"object": "list", "data": data}))

    def _tokenize(self, request: Request, responder: Responder) -> None:
        """vLLM's ``POST /tokenize`` for a prompt or chat messages: the token count and ids."""
        body = self._parse(request.body)
        self._check_model(body)
        if isinstance(body.get("messages"), list):
            text = render_chat(body["messages"])
        elif "prompt" in body:
            text = render_prompt(body["prompt"])
        else:
            raise BadRequest("prompt or messages is required", param="prompt")
        tokens = self.driver.tokenize(text)
        responder.send(200, JSON, orjson.dumps({
            "count": len(tokens), "max_model_len": self.identity.max_model_len,
            "tokens": tokens, "token_strs": None,
        }))  # fmt: skip

    def _embeddings(self, request: Request, responder: Responder) -> None:
        body = self._parse(request.body)
        self._check_model(body)
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        if not items or items == [None]:
            raise BadRequest("input is required", param="input")
        data = []
        total = 0
        for index, item in enumerate(items):
            text = item if isinstance(item, str) else orjson.dumps(item).decode()
            tokens = self.driver.tokenize(text)
            total += len(tokens)
            vector = [
                ((t * 2654435761 + i) % 2001 - 1000) / 1000.0 for i, t in enumerate(tokens[:16])
            ]
            data.append({"object": "embedding", "index": index, "embedding": vector})
        responder.send(200, JSON, orjson.dumps({
            "id": f"embd-{self._next_id()}", "object": "list", "created": int(time.time()),
            "model": body["model"], "data": data,
            "usage": {"prompt_tokens": total, "total_tokens": total, "completion_tokens": 0},
        }))  # fmt: skip

    async def _generate(self, kind: str, request: Request, responder: Responder) -> None:
        received = time.monotonic()
        body = self._parse(request.body)
        model = self._check_model(body)
        if kind == "chat":
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise BadRequest("messages must be a non-empty list", param="messages")
            text = render_chat(messages)
            continue_final = bool(body.get("continue_final_message"))
            if continue_final and text.endswith("<|assistant|>"):
                text = text[: -len("<|assistant|>")]
        else:
            if "prompt" not in body:
                raise BadRequest("prompt is required", param="prompt")
            text = render_prompt(body["prompt"])
        prompt_ids = self.driver.tokenize(text)
        max_model_len = self.identity.max_model_len
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise BadRequest("max_tokens must be at least 1", param="max_tokens")
        if max_tokens is not None and max_tokens > max_model_len:
            raise BadRequest(
                f"max_tokens={max_tokens} cannot be greater than max_model_len={max_model_len}. "
                f"Please request fewer output tokens. (parameter=max_tokens, value={max_tokens})",
                param="max_tokens",
            )
        if len(prompt_ids) + (max_tokens or 1) > max_model_len:
            raise BadRequest(
                f"This model's maximum context length is {max_model_len} tokens. However, your "
                f"request has {len(prompt_ids)} input tokens and requests {max_tokens or 1} "
                "output tokens. Please reduce the length of the input or the output.",
                param="input_tokens",
            )
        max_tokens = max_tokens or max_model_len - len(prompt_ids)
        n = body.get("n") or 1
        if not isinstance(n, int) or n < 1:
            raise BadRequest("n must be at least 1", param="n")
        stop = body.get("stop") or []
        stops = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str) and s]
        stream = body.get("stream") is True
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True

        self._num_requests += 1
        if self.faults.fails(self._num_requests):
            responder.send(500, JSON, fmt.error("injected failure", "InternalServerError", 500))
            return
        if self.faults.hang:
            await asyncio.get_running_loop().create_future()  # until the client goes away
        number = self._next_id()
        request_id = ("chatcmpl-" if kind == "chat" else "cmpl-") + number
        seed = body.get("seed")
        base_seed = seed if isinstance(seed, int) else int(number, 16) % 1_000_003
        generation = _Generation(
            app=self, kind=kind, responder=responder, request_id=request_id, model=model,
            created=int(time.time()), stream=stream, include_usage=include_usage,
            stops=stops, num_prompt_tokens=len(prompt_ids), received=received,
            choices=[_Choice(seed=base_seed + i) for i in range(n)],
        )  # fmt: skip
        lora = model if model in self.identity.lora_adapters else None
        for index in range(n):
            self.driver.submit(
                f"{request_id}-{index}",
                prompt_ids,
                max_tokens,
                lora,
                generation.listener(index),
                interval=(self.stream_interval if stream else 0) if not stops else 1,
            )
        responder.disconnect_callbacks.append(generation.abort)
        await generation.done

    # helpers ----------------------------------------------------------------------
    def _parse(self, raw: bytes) -> dict[str, Any]:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"JSON decode error: {exc}", param="body") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object", param="body")
        return body

    def _check_model(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        if model is None:
            return self.identity.served_names[0]
        if not isinstance(model, str) or model not in self._models:
            raise BadRequest(
                f"The model `{model}` does not exist. "
                f"Valid aliases: {', '.join(sorted(self._models))}.",
                param="model",
                status=404,
            )
        return model

    def _next_id(self) -> str:
        self._num_ids += 1
        return f"{self._id_prefix}{self._num_ids:08x}"

    def count_streamed(self, count: int) -> None:
        self._num_streamed_tokens += count
        limit = self.faults.die_after_tokens
        if limit and self._num_streamed_tokens >= limit:
            os._exit(17)  # a replica dying mid-stream, as abruptly as a lost node


@dataclass
class _Generation:
    """One request's choices as tokens arrive from the driver."""

    app: ReplicaApp
    kind: str
    responder: Responder
    request_id: str
    model: str
    created: int
    stream: bool
    include_usage: bool
    stops: list[str]
    num_prompt_tokens: int
    received: float
    choices: list[_Choice]
    cached_tokens: int = 0
    started: bool = False
    last_token_at: float = 0.0
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def listener(self, index: int) -> Callable[[int, bool, int], None]:
        def on_tokens(count: int, finished: bool, cached_tokens: int) -> None:
            self.on_tokens(index, count, finished, cached_tokens)

        return on_tokens

    def on_tokens(self, index: int, count: int, finished: bool, cached_tokens: int) -> None:
        if self.done.done():
            return
        choice = self.choices[index]
        now = time.monotonic()
        metrics = self.app.metrics
        opening = not self.started
        if opening:
            self.started = True
            self.cached_tokens = cached_tokens
            metrics.ttft.observe(now - self.received)
        elif count:
            # A streamed request reports each step's gap; a quiet (non-streamed) one is told
            # of many tokens at once and contributes their mean gap once.
            metrics.itl.observe((now - self.last_token_at) / count)
        self.last_token_at = now
        piece = synthetic_text(choice.seed, choice.num_tokens, count)
        choice.num_tokens += count
        if self.stops:
            so_far = "".join(choice.text) + piece
            hit = min((p for s in self.stops if (p := so_far.find(s)) >= 0), default=-1)
            if hit >= 0:
                piece = so_far[:hit][len("".join(choice.text)) :]
                finished = True
                choice.finish_reason = "stop"
                self.app.driver.abort(f"{self.request_id}-{index}")
        choice.text.append(piece)
        if finished and choice.finish_reason is None:
            choice.finish_reason = "length"
        last = all(c.finish_reason is not None for c in self.choices)
        if not self.stream:
            if last:
                self._finish(now)
            return
        # One write per delivery: the head and role chunks go with the first tokens, the
        # last tokens with the usage chunk and [DONE] (a socket write is the cost).
        chunk = self._chunk(index, piece, choice.finish_reason if finished else None)
        if opening:
            chunk = self._first_chunks() + chunk
        self.app.count_streamed(count)
        if last:
            self._finish(now, chunk, opening)
            return
        if opening:
            self.responder.start_stream(200, SSE, chunk)
        else:
            self.responder.write_chunk(chunk)
        reset_after = self.app.faults.reset_after_tokens
        if reset_after and not finished and choice.num_tokens >= reset_after:
            self.responder.abort()  # a connection reset mid-stream
            self.app.driver.abort(f"{self.request_id}-{index}")

    def _first_chunks(self) -> bytes:
        if self.kind != "chat":
            return b""
        return b"".join(
            fmt.chat_chunk(self.request_id, self.created, self.model, i, "", None, first=True)
            for i in range(len(self.choices))
        )

    def _chunk(self, index: int, piece: str, finish_reason: str | None) -> bytes:
        if self.kind == "chat":
            return fmt.chat_chunk(
                self.request_id, self.created, self.model, index, piece, finish_reason
            )
        return fmt.completion_chunk(
            self.request_id, self.created, self.model, index, piece, finish_reason
        )

    def _finish(self, now: float, last_chunk: bytes = b"", opening: bool = False) -> None:
        """End the response; a stream's ``last_chunk`` (and, when ``opening``, its head)
        goes out in the same write as the usage chunk and [DONE]."""
        completion_tokens = sum(c.num_tokens for c in self.choices)
        self.app.metrics.e2e.observe(now - self.received)
        if self.stream:
            tail = last_chunk
            if self.include_usage:
                object_name = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
                tail += fmt.usage_chunk(
                    self.request_id, self.created, self.model, object_name,
                    self.num_prompt_tokens, completion_tokens, self.cached_tokens,
                )  # fmt: skip
            if opening:
                self.responder.start_stream(200, SSE)
            self.responder.end_stream(tail + fmt.DONE)
        else:
            build = fmt.chat_response if self.kind == "chat" else fmt.completion_response
            self.responder.send(200, JSON, build(
                self.request_id, self.created, self.model,
                ["".join(c.text) for c in self.choices],
                [c.finish_reason or "length" for c in self.choices],
                self.num_prompt_tokens, completion_tokens, self.cached_tokens,
            ))  # fmt: skip
        self.done.set_result(None)

    def abort(self) -> None:
        """The client went away: free the engine's work."""
        for index in range(len(self.choices)):
            self.app.driver.abort(f"{self.request_id}-{index}")
        if not self.done.done():
            self.done.set_result(None)
