"""Drives one run: dispatches a workload's requests and collects their results.

Open loop (``concurrency is None``): each spec is dispatched at its
``arrival_s`` on the run's clock, whatever the server does — a timer fires at
the next arrival and sends every request that is due (its lateness is kept
as ``lag_s``). Closed loop: ``concurrency`` requests are kept in flight; each
completion dispatches the next spec at once (arrival times are ignored).

Dispatch stops at ``num_requests`` requests, at the first spec arriving at or
after ``duration_s`` (open loop) or once ``duration_s`` has passed (closed
loop), or when the workload ends; the run then waits for the requests in
flight. Every request is timed from its dispatch, so time spent connecting
or waiting for one of ``max_connections`` connections counts. One periodic
sweep fails requests older than ``timeout_s`` and aborts their connections.
No task per request: callbacks only, except one task per new connection.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import deque
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass

from gpufleet.bench.connection import BenchConnection, ConnectionPool
from gpufleet.bench.exchange import Cause, Exchange, RequestResult
from gpufleet.bench.request import RequestEncoder
from gpufleet.workload.spec import RequestSpec


@dataclass(frozen=True, slots=True)
class Load:
    """How one run dispatches (module doc)."""

    concurrency: int | None = None
    duration_s: float | None = None
    num_requests: int | None = None
    timeout_s: float = 600.0
    max_connections: int = 10_000


@dataclass(slots=True)
class RunOutcome:
    results: list[RequestResult]
    itl_s: array[float]
    """Every inter-token gap observed, in arrival order."""
    wall_s: float
    """From the run's start to the last completion."""
    interrupted: bool


class Runner:
    """One run over ``specs`` (module doc); `run` may be awaited once."""

    def __init__(self, pool: ConnectionPool, encoder: RequestEncoder, load: Load, stream: bool):
        self._pool = pool
        self._encoder = encoder
        self._load = load
        self._stream = stream
        self._specs: Iterator[RequestSpec] = iter(())
        self._next: RequestSpec | None = None
        self._inflight: set[Exchange] = set()
        self._backlog: deque[tuple[bytes, Exchange]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatching = False
        self._interrupted = False
        self._timer: asyncio.TimerHandle | None = None
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[None] | None = None
        self._origin = 0.0
        self._last_end = 0.0
        self.results: list[RequestResult] = []
        self.itl_s: array[float] = array("d")
        self.num_sent = 0
        self.num_ok = 0
        self.num_failed = 0
        self.recent_ttft_s: deque[float] = deque(maxlen=512)

    @property
    def num_in_flight(self) -> int:
        return len(self._inflight)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._origin if self._origin else 0.0

    async def run(self, specs: Iterator[RequestSpec]) -> RunOutcome:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._specs = specs
        self._origin = self._last_end = time.perf_counter()
        self._dispatching = True
        self._sweep_handle = loop.call_later(self._sweep_interval_s(), self._sweep)
        if self._load.concurrency is None:
            if self._advance() is not None:
                self._tick()
        else:
            for _ in range(self._load.concurrency):
                self._next_closed()
        self._maybe_done()
        try:
            await self._done
        finally:
            if self._sweep_handle is not None:
                self._sweep_handle.cancel()
            if self._timer is not None:
                self._timer.cancel()
        return RunOutcome(
            self.results, self.itl_s, self._last_end - self._origin, self._interrupted
        )

    def interrupt(self) -> None:
        """Stop dispatching and cancel the requests in flight (they count as cancelled)."""
        self._interrupted = True
        self._stop_dispatching()
        for exchange in list(self._inflight):
            self._abort(exchange, Cause.CANCELLED)
        self._maybe_done()

    # -- dispatch ------------------------------------------------------------------------
    def _advance(self) -> RequestSpec | None:
        """The next spec to dispatch, or ``None`` (and dispatch stops)."""
        load = self._load
        spec = None
        if load.num_requests is None or self.num_sent < load.num_requests:
            spec = next(self._specs, None)
        if spec is not None and load.duration_s is not None:
            # open loop: the spec's arrival time; closed loop: the time now
            now_s = spec.arrival_s if load.concurrency is None else self.elapsed_s
            if now_s >= load.duration_s:
                spec = None
        self._next = spec
        if spec is None:
            self._stop_dispatching()
        return spec

    def _tick(self) -> None:
        self._timer = None
        spec = self._next
        while spec is not None and self._dispatching:
            lag_s = time.perf_counter() - self._origin - spec.arrival_s
            if lag_s < 0:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(-lag_s, self._tick)
                return
            self._dispatch(spec, lag_s)
            spec = self._advance()

    def _next_closed(self) -> None:
        if self._dispatching and (spec := self._advance()) is not None:
            self._dispatch(spec, 0.0)
        self._maybe_done()

    def _dispatch(self, spec: RequestSpec, lag_s: float) -> None:
        self.num_sent += 1
        exchange = Exchange(
            spec.index,
            self._stream,
            spec.num_prompt_tokens,
            lag_s,
            self._origin,
            self.itl_s,
            self._on_result,
        )
        self._inflight.add(exchange)
        data = self._encoder.encode(spec)
        conn = self._pool.take_idle()
        if conn is not None:
            conn.send(data, exchange)
        elif self._pool.num_open < self._load.max_connections:
            self._start_connection(data, exchange)
        else:
            self._backlog.append((data, exchange))

    def _start_connection(self, data: bytes, exchange: Exchange) -> None:
        connecting = self._pool.connect()  # counts against the limit from now on
        task = asyncio.get_running_loop().create_task(
            self._connect_and_send(connecting, data, exchange)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect_and_send(
        self, connecting: Awaitable[BenchConnection], data: bytes, exchange: Exchange
    ) -> None:
        try:
            conn = await connecting
        except OSError:
            exchange.fail(Cause.CONNECTION)
            return
        if exchange.finished:  # timed out or cancelled while connecting
            self._pool.release(conn)
            self._drain_backlog()
        else:
            conn.send(data, exchange)

    def _drain_backlog(self) -> None:
        backlog, pool = self._backlog, self._pool
        while backlog:
            data, exchange = backlog[0]
            if exchange.finished:
                backlog.popleft()
                continue
            conn = pool.take_idle()
            if conn is None:
                if pool.num_open >= self._load.max_connections:
                    return
                backlog.popleft()
                self._start_connection(data, exchange)
                continue
            backlog.popleft()
            conn.send(data, exchange)

    # -- completion ----------------------------------------------------------------------
    def _on_result(self, exchange: Exchange, result: RequestResult) -> None:
        self._inflight.discard(exchange)
        self.results.append(result)
        self._last_end = time.perf_counter()
        if result.error is None:
            self.num_ok += 1
            if result.ttft_s is not None:
                self.recent_ttft_s.append(result.ttft_s)
        elif result.error != Cause.CANCELLED:
            self.num_failed += 1
        loop = asyncio.get_running_loop()
        if self._backlog:
            loop.call_soon(self._drain_backlog)
        if self._load.concurrency is not None and self._dispatching:
            loop.call_soon(self._next_closed)
        else:
            self._maybe_done()

    def _abort(self, exchange: Exchange, cause: str) -> None:
        conn = exchange.conn
        if conn is not None and conn.exchange is exchange:
            conn.abort()
        exchange.finish(cause)

    def _sweep(self) -> None:
        deadline = time.perf_counter() - self._load.timeout_s
        for exchange in [e for e in self._inflight if e.sent_at < deadline]:
            self._abort(exchange, Cause.TIMEOUT)
        loop = asyncio.get_running_loop()
        self._sweep_handle = loop.call_later(self._sweep_interval_s(), self._sweep)

    def _sweep_interval_s(self) -> float:
        return min(1.0, max(0.01, self._load.timeout_s / 10))

    def _stop_dispatching(self) -> None:
        self._dispatching = False
        self._next = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _maybe_done(self) -> None:
        if self._dispatching or self._inflight or self._done is None or self._done.done():
            return
        self._done.set_result(None)
