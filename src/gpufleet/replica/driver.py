"""Drives the pure engine model in real time (scaled by ``speed``).

Engine time advances by each step's modelled duration; the driver sleeps
until real time catches up (``duration / speed``), then delivers the step's
tokens to each request's listener. When the engine is idle, engine time
jumps to the scaled wall clock, so arrivals are stamped at their real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.request import EngineRequest

Listener = Callable[[int, bool, int], None]
"""(new output tokens, finished, cached prompt tokens) for one request."""


class EngineDriver:
    def __init__(
        self,
        engine: EngineModel,
        tokenize: Callable[[str], list[int]],
        speed: float = 1.0,
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.engine = engine
        self._tokenize = tokenize
        self.speed = speed
        self._listeners: dict[str, Listener] = {}
        self._held: dict[str, int] = {}
        """Tokens produced but not yet delivered, per batched request."""
        self._intervals: dict[str, int] = {}
        self._cached: dict[str, int] = {}
        """Prefix-cache hit (tokens) of each live request, from its first admission."""
        self._wake = asyncio.Event()
        self._origin = time.monotonic()
        self._engine_now = 0.0

    def tokenize(self, text: str) -> list[int]:
        return self._tokenize(text) or [0]

    def now(self) -> float:
        """Engine time (seconds) corresponding to the wall clock now."""
        return (time.monotonic() - self._origin) * self.speed

    def submit(
        self,
        request_id: str,
        prompt_ids: Sequence[int],
        max_tokens: int,
        lora: str | None,
        listener: Listener,
        interval: int = 1,
    ) -> None:
        """Start a request whose listener hears of tokens every ``interval`` tokens
        (0: only the first token and the end)."""
        self._listeners[request_id] = listener
        if interval != 1:
            self._held[request_id] = 0
            self._intervals[request_id] = interval
        arrival = max(self._engine_now, self.now())
        self.engine.add_request(
            EngineRequest(request_id, tuple(prompt_ids), max_tokens, arrival_s=arrival, lora=lora)
        )
        self._wake.set()

    def abort(self, request_id: str) -> None:
        self._cached.pop(request_id, None)
        self._held.pop(request_id, None)
        self._intervals.pop(request_id, None)
        if self._listeners.pop(request_id, None) is not None:
            self.engine.abort(request_id)

    async def run(self) -> None:
        engine = self.engine
        while True:
            if not engine.has_work:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._engine_now = max(self._engine_now, self.now())
            result = engine.step(self._engine_now)
            if result.is_idle:
                await asyncio.sleep(0.001)
                continue
            cached = self._cached
            for request_id, num_cached in result.cached_prompt_tokens:
                cached[request_id] = num_cached
            self._engine_now += result.duration_s
            delay = self._origin + self._engine_now / self.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._deliver(result.advanced, set(result.finished_ids), set(result.first_token_ids))

    def _deliver(
        self,
        advanced: Sequence[tuple[str, int, int]],
        finished: set[str],
        first: set[str],
    ) -> None:
        """Hand each request its new tokens. A request with a delivery interval of N is
        told of its first token at once, then of tokens in batches of at least N (vLLM's
        ``--stream-interval``), and of its end; interval 0 (non-streaming requests) means
        first token and end only. Held tokens are summed here, so a busy replica does no
        per-token Python work for them."""
        listeners = self._listeners
        cached = self._cached
        held = self._held
        for request_id, _, num_output in advanced:
            if num_output == 0:
                continue
            listener = listeners.get(request_id)
            if listener is None:
                continue
            done = request_id in finished
            if request_id in held:
                pending = held[request_id] + num_output
                interval = self._intervals[request_id]
                if not done and request_id not in first and (not interval or pending < interval):
                    held[request_id] = pending
                    continue
                num_output = pending
                held[request_id] = 0
            if done:
                del listeners[request_id]
                held.pop(request_id, None)
                self._intervals.pop(request_id, None)
            listener(
                num_output,
                done,
                cached.pop(request_id, 0) if done else cached.get(request_id, 0),
            )
