"""The engine driver's wall-clock alarm: fires once, at or after its time, replaceable."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
import uvloop

from gpufleet.replica.wall_timer import WallTimer


async def _fire_times(precise: bool, delays: list[float]) -> list[tuple[float, float]]:
    """(target, fired) monotonic times of one alarm per delay, each awaited in turn."""
    timer = WallTimer(asyncio.get_running_loop(), precise=precise)
    try:
        out = []
        for delay in delays:
            fired: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            target = time.monotonic() + delay
            timer.call_at(target, lambda f=fired: f.set_result(time.monotonic()))
            out.append((target, await fired))
        return out
    finally:
        timer.close()


@pytest.mark.skipif(sys.platform != "linux", reason="timerfd is Linux's")
def test_precise_alarms_are_never_early_even_under_uvloop() -> None:
    """uvloop rounds sub-millisecond delays to zero and fires them at once; the timerfd
    alarm fires at or after its time (the kernel's guarantee)."""
    delays = [0.0002 * (i % 7 + 1) for i in range(60)]
    for target, fired in uvloop.run(_fire_times(True, delays)):
        assert fired >= target


def test_the_loop_timer_fallback_fires_every_alarm() -> None:
    delays = [0.0005 * (i % 3 + 1) for i in range(10)]
    times = asyncio.run(_fire_times(False, delays))
    assert len(times) == 10


@pytest.mark.parametrize("precise", [True, False])
def test_call_at_replaces_and_cancel_drops_the_pending_alarm(precise: bool) -> None:
    async def go() -> list[str]:
        loop = asyncio.get_running_loop()
        timer = WallTimer(loop, precise=precise)
        heard: list[str] = []
        try:
            now = time.monotonic()
            timer.call_at(now + 0.002, lambda: heard.append("first"))
            timer.call_at(now + 0.004, lambda: heard.append("second"))  # replaces the first
            await asyncio.sleep(0.02)
            timer.call_at(time.monotonic() + 0.002, lambda: heard.append("cancelled"))
            timer.cancel()
            await asyncio.sleep(0.02)
            assert timer.precise == (precise and sys.platform == "linux")
        finally:
            timer.close()
        return heard

    assert asyncio.run(go()) == ["second"]
