"""Token delivery batching of the replica driver (vLLM's --stream-interval, quiet requests)."""

from __future__ import annotations

import asyncio
from typing import Any

from gpufleet.replica.driver import EngineDriver


def deliveries(interval: int, steps: list[tuple[int, bool, bool]]) -> list[tuple[int, bool]]:
    """Feed (new tokens, first?, done?) per step; return what the listener heard."""

    async def go() -> list[tuple[int, bool]]:
        heard: list[tuple[int, bool]] = []
        engine: Any = type("E", (), {"add_request": lambda self, r: None})()
        driver = EngineDriver(engine, lambda text: [1, 2, 3])
        driver.submit("r", [1, 2, 3], 100, None, lambda n, done, c: heard.append((n, done)),
                      interval=interval)  # fmt: skip
        for tokens, first, done in steps:
            driver._deliver([("r", tokens, tokens)], {"r"} if done else set(),
                            {"r"} if first else set())  # fmt: skip
        return heard

    return asyncio.run(go())


STEPS = [(1, True, False)] + [(1, False, False)] * 8 + [(1, False, True)]


def test_interval_one_delivers_every_step() -> None:
    assert deliveries(1, STEPS) == [(1, False)] * 9 + [(1, True)]


def test_interval_batches_after_the_first_token() -> None:
    assert deliveries(4, STEPS) == [(1, False), (4, False), (4, False), (1, True)]


def test_quiet_requests_hear_first_token_and_end_only() -> None:
    heard = deliveries(0, STEPS)
    assert heard == [(1, False), (9, True)]
    assert sum(n for n, _ in heard) == 10
