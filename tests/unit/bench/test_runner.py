"""The runner against an in-process HTTP server: loops, limits, reuse, timeouts, failures."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import orjson
import pytest
import uvloop

from gpufleet.api.server import HttpServer, Request, Responder
from gpufleet.bench.connection import ConnectionPool
from gpufleet.bench.exchange import Cause
from gpufleet.bench.request import RequestEncoder, RequestOptions, Target
from gpufleet.bench.runner import Load, Runner, RunOutcome
from gpufleet.workload import Fixed, Poisson, RequestSpec, Step, SyntheticWorkload
from gpufleet.workload.arrivals import ArrivalProcess

SSE = b"content-type: text/event-stream\r\n"


@dataclass
class FakeEngine:
    """Streams ``max_tokens`` one-token chunks; the model name picks a misbehaviour."""

    requests: list[Request] = field(default_factory=list)
    peers: set[str] = field(default_factory=set)

    async def __call__(self, request: Request, responder: Responder) -> None:
        self.requests.append(request)
        self.peers.add(request.client)
        body = orjson.loads(request.body)
        model = body["model"]
        if model == "fail":
            responder.send(500, b"", b'{"error": {"message": "boom"}}')
            return
        if model == "hang":
            await asyncio.sleep(30)
            return
        responder.start_stream(200, SSE, b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n')
        for i in range(body["max_tokens"]):
            await asyncio.sleep(0)
            responder.write_chunk(b'data: {"choices":[{"delta":{"content":"t%d"}}]}\n\n' % i)
            if model == "die" and i == 1:
                responder._conn.close()  # the replica vanishes mid-stream
                return
        usage = b'data: {"choices":[],"usage":{"completion_tokens":%d}}\n\n' % body["max_tokens"]
        responder.end_stream(usage + b"data: [DONE]\n\n")


def specs(arrivals: ArrivalProcess | None = None) -> Iterator[RequestSpec]:
    workload = SyntheticWorkload(arrivals or Poisson(1000.0), Fixed(8), Fixed(4))
    return workload.requests(seed=0)


async def drive(
    load: Load,
    work: Iterator[RequestSpec],
    model: str = "ok",
    engine: FakeEngine | None = None,
    port: int | None = None,
    during: Callable[[Runner], Awaitable[None]] | None = None,
) -> RunOutcome:
    engine = engine or FakeEngine()
    server = HttpServer(engine, 1 << 20, lambda request, exc: None)
    bound = await server.start("127.0.0.1", 0)
    target = Target.parse(f"http://127.0.0.1:{port or bound}", "chat")
    pool = ConnectionPool(target.host, target.port)
    runner = Runner(pool, RequestEncoder(target, RequestOptions("chat", model)), load, True)
    try:
        task = asyncio.ensure_future(runner.run(work))
        if during is not None:
            await during(runner)
        return await asyncio.wait_for(task, 20)
    finally:
        pool.close()
        server.stop_accepting()
        server.close_all()


def test_closed_loop_keeps_concurrency_and_reuses_connections() -> None:
    engine = FakeEngine()
    outcome = asyncio.run(drive(Load(concurrency=4, num_requests=60), specs(), engine=engine))
    assert len(outcome.results) == 60 and len(engine.requests) == 60
    assert all(r.error is None and r.num_output_tokens == 4 for r in outcome.results)
    assert all(r.lag_s == 0 for r in outcome.results)
    assert len(engine.peers) == 4, "one keep-alive connection per concurrent slot"
    assert len(outcome.itl_s) == 60 * 3
    assert sorted(r.spec_index for r in outcome.results) == list(range(60))


def test_open_loop_dispatches_on_schedule_until_the_duration() -> None:
    work = list(itertools.islice(specs(Poisson(400.0)), 1000))
    due = [s for s in work if s.arrival_s < 0.5]
    outcome = uvloop.run(drive(Load(duration_s=0.5), iter(work)))
    assert len(outcome.results) == len(due)
    assert all(r.error is None for r in outcome.results)
    by_index = {r.spec_index: r for r in outcome.results}
    for spec in due:
        result = by_index[spec.index]
        assert result.start_s >= spec.arrival_s
        assert result.start_s == pytest.approx(spec.arrival_s + result.lag_s, abs=1e-3)
    assert sorted(r.lag_s for r in outcome.results)[len(due) // 2] < 0.05
    assert outcome.wall_s >= max(r.start_s for r in outcome.results)


def test_open_loop_respects_the_connection_limit() -> None:
    engine = FakeEngine()
    burst = Step(((0.0, 10_000.0), (0.005, 0.0)))  # ~50 requests within 5 ms, then none
    outcome = asyncio.run(drive(Load(max_connections=2), specs(burst), engine=engine))
    assert len(outcome.results) > 20
    assert all(r.error is None for r in outcome.results)
    assert len(engine.peers) <= 2


def test_http_errors_timeouts_and_broken_streams_by_cause() -> None:
    failed = asyncio.run(drive(Load(concurrency=2, num_requests=6), specs(), model="fail"))
    assert {r.error for r in failed.results} == {"http_500"}
    hung = asyncio.run(
        drive(Load(concurrency=3, num_requests=3, timeout_s=0.2), specs(), model="hang")
    )
    assert [r.error for r in hung.results] == [Cause.TIMEOUT] * 3
    assert hung.wall_s < 2.0
    died = asyncio.run(drive(Load(concurrency=2, num_requests=4), specs(), model="die"))
    assert {r.error for r in died.results} == {Cause.CONNECTION}


def test_unreachable_server_is_a_connection_error() -> None:
    from tests.support.processes import free_port

    outcome = asyncio.run(drive(Load(concurrency=2, num_requests=5), specs(), port=free_port()))
    assert [r.error for r in outcome.results] == [Cause.CONNECTION] * 5


def test_interrupt_cancels_what_is_in_flight() -> None:
    async def interrupt_when_busy(runner: Runner) -> None:
        while runner.num_in_flight < 3:
            await asyncio.sleep(0.01)
        runner.interrupt()

    outcome = asyncio.run(
        drive(Load(concurrency=3, duration_s=60), specs(), model="hang", during=interrupt_when_busy)
    )
    assert outcome.interrupted
    assert [r.error for r in outcome.results] == [Cause.CANCELLED] * 3


def test_ends_with_a_finite_workload() -> None:
    outcome = asyncio.run(drive(Load(), specs(Step(((0.0, 500.0), (0.02, 0.0))))))
    assert 0 < len(outcome.results) < 40
    assert math.isfinite(outcome.wall_s)
