"""The driver rides decode runs with the same engine outcome as stepping one at a time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gpufleet.engine.step_result import StepResult
from gpufleet.replica.driver import EngineDriver
from gpufleet.replica.service import ReplicaOptions, build_replica

SPEED = 200.0  # an 8B decode step is ~7 ms: 35 µs of wall time


@dataclass
class Heard:
    chunks: list[int] = field(default_factory=list)
    done: list[bool] = field(default_factory=list)

    def __call__(self, num_tokens: int, finished: bool, cached: int) -> None:
        self.chunks.append(num_tokens)
        self.done.append(finished)


def make_driver(decode_runs: bool) -> EngineDriver:
    _, driver = build_replica(ReplicaOptions(model="llama-3-8b", gpu="h100", speed=SPEED))
    driver.decode_runs = decode_runs
    return driver


async def serve(
    driver: EngineDriver, script: list[tuple[float, str, int, int]]
) -> dict[str, Heard]:
    """Submit ``(at wall s, id, max_tokens, interval)`` in order; abort ids starting with
    'x' 5 ms after they start; scrape (settle) every 3 ms; wait until all are done."""
    runner = asyncio.get_running_loop().create_task(driver.run())
    heard: dict[str, Heard] = {}
    start = asyncio.get_running_loop().time()
    try:
        for at, request_id, max_tokens, interval in script:
            await asyncio.sleep(max(0.0, start + at - asyncio.get_running_loop().time()))
            heard[request_id] = Heard()
            driver.submit(request_id, list(range(300)), max_tokens, None, heard[request_id],
                          interval=interval)  # fmt: skip
            if request_id.startswith("x"):
                asyncio.get_running_loop().call_later(0.005, driver.abort, request_id)
        for _ in range(2000):
            if all(h.done and h.done[-1] for k, h in heard.items() if not k.startswith("x")):
                break
            driver.settle()  # what a /metrics scrape does
            await asyncio.sleep(0.003)
    finally:
        runner.cancel()
    return heard


def run(
    decode_runs: bool, script: list[tuple[float, str, int, int]]
) -> tuple[dict[str, Heard], EngineDriver]:
    driver = make_driver(decode_runs)
    return asyncio.run(serve(driver, script)), driver


SCRIPT = [
    (0.0, "a", 300, 1), (0.0, "b", 120, 16), (0.0, "c", 200, 0), (0.0, "d", 257, 4),
    (0.004, "e", 90, 16), (0.009, "x1", 500, 1), (0.013, "f", 64, 1), (0.02, "g", 33, 16),
]  # fmt: skip


def test_every_request_hears_all_its_tokens_once_and_the_end_last() -> None:
    heard, driver = run(True, SCRIPT)
    for request_id, _, max_tokens, interval in ((r, a, m, i) for a, r, m, i in SCRIPT):
        if request_id.startswith("x"):
            assert not heard[request_id].done or not heard[request_id].done[-1]
            continue
        h = heard[request_id]
        assert sum(h.chunks) == max_tokens, request_id
        assert h.done[-1] and h.done.count(True) == 1, request_id
        if interval == 0:
            assert len(h.chunks) == 2  # first token, then the rest at the end
    stats = driver.engine.stats
    assert stats.num_running == stats.num_waiting == 0
    assert stats.num_requests_aborted == 1


def test_riding_runs_matches_stepping_on_the_engine_side() -> None:
    script = [(0.0, r, m, i) for _, r, m, i in SCRIPT if not r.startswith("x")]
    ridden, rider = run(True, script)
    stepped, stepper = run(False, script)
    a, b = rider.engine.stats, stepper.engine.stats
    assert a.num_steps == b.num_steps
    assert a.num_generation_tokens_total == b.num_generation_tokens_total
    assert a.prefix_cache_hits_tokens == b.prefix_cache_hits_tokens
    assert a.num_free_blocks == b.num_free_blocks
    for request_id in ridden:
        assert sum(ridden[request_id].chunks) == sum(stepped[request_id].chunks)


def test_a_run_steps_the_engine_far_less_than_once_a_step() -> None:
    script = [(0.0, f"r{k}", 256, 0) for k in range(8)]  # quiet: first token and end only
    driver = make_driver(True)
    engine = driver.engine
    step = engine.step
    calls = [0]

    def counting_step(now_s: float) -> StepResult:
        calls[0] += 1
        return step(now_s)

    engine.step = counting_step  # type: ignore[method-assign]
    heard = asyncio.run(serve(driver, script))
    assert all(sum(h.chunks) == 256 for h in heard.values())
    assert engine.stats.num_steps >= 256
    assert calls[0] < engine.stats.num_steps / 5
