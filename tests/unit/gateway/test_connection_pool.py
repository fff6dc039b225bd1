"""A cancelled connect must end in CancelledError, whenever the cancel arrives: a scrape or
probe loop being stopped must stop, even against a replica that just went away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from gpufleet.backends.connection import ConnectionPool
from gpufleet.errors import BackendUnavailable
from tests.support.processes import free_port

Runner = Callable[[Coroutine[Any, Any, list[str]]], list[str]]


async def cancel_after_each_step(max_steps: int = 40) -> list[str]:
    """Start a connect to a refusing port, cancel it after 0, 1, 2, … loop steps; what each
    attempt ended in (the refusal lands within a few steps)."""
    pool = ConnectionPool("e", "127.0.0.1", free_port())  # free: nobody listens
    outcomes = []
    for steps in range(max_steps):
        task = asyncio.get_running_loop().create_task(pool.acquire(1.0))
        for _ in range(steps):
            await asyncio.sleep(0)
        if task.done():  # refused before the cancel: nothing left to test from here on
            with pytest.raises(BackendUnavailable):
                task.result()
            break
        task.cancel()
        try:
            await task
            outcomes.append("returned")
        except asyncio.CancelledError:
            outcomes.append("cancelled")
        except BackendUnavailable:
            outcomes.append("cancel swallowed: refused")
    return outcomes


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_a_cancel_is_never_swallowed_by_a_connect_that_completes_at_that_moment(
    run: Runner,
) -> None:
    outcomes = run(cancel_after_each_step())
    assert len(outcomes) >= 2  # the window where the refusal and the cancel meet is covered
    assert outcomes == ["cancelled"] * len(outcomes)
