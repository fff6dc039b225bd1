"""Token delivery batching of the replica driver (vLLM's --stream-interval, quiet requests)."""

from __future__ import annotations

import asyncio
from typing import Any

from gpufleet.replica.driver import EngineDriver


def deliveries(
    interval: int, steps: list[tuple[int, bool, bool]], per_step: bool = False
) -> list[tuple[int, bool]]:
    """Feed (new tokens, first?, done?) per delivery; return what the listener heard.
    ``per_step``: each delivery's tokens are one per step of a decode run."""

    async def go() -> list[tuple[int, bool]]:
        heard: list[tuple[int, bool]] = []
        engine: Any = type("E", (), {"add_request": lambda self, r: None})()
        driver = EngineDriver(engine, lambda text: [1, 2, 3])
        driver.submit("r", [1, 2, 3], 100, None, lambda n, done, c: heard.append((n, done)),
                      interval=interval)  # fmt: skip
        for tokens, first, done in steps:
            driver._deliver([("r", tokens, tokens)], {"r"} if done else set(),
                            {"r"} if first else set(), per_step=per_step)  # fmt: skip
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


def test_a_wake_owing_several_steps_still_streams_one_chunk_per_step() -> None:
    """A decode run's steps delivered at one wake (coalesced, or settled by an arrival)
    go out as vLLM streams them: a chunk per step, or per N steps with the rest held."""
    run = [(1, True, False), (3, False, False), (1, False, True)]
    assert deliveries(1, run, per_step=True) == [(1, False)] * 4 + [(1, True)]
    run = [(1, True, False), (10, False, False), (3, False, True)]
    assert deliveries(4, run, per_step=True) == [(1, False), (4, False), (4, False), (4, False),
                                                 (1, True)]  # fmt: skip
    assert deliveries(0, run, per_step=True) == [(1, False), (13, True)]


def test_a_plain_step_of_several_tokens_is_one_chunk() -> None:
    """Speculative decoding: the tokens one step accepts are streamed together."""
    assert deliveries(1, [(1, True, False), (3, False, False), (2, False, True)]) == [
        (1, False), (3, False), (2, True),
    ]  # fmt: skip
