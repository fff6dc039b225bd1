"""Drives the pure engine model in real time (scaled by ``speed``).

Engine time advances by each step's modelled duration; the driver sleeps until real
time catches up (``duration / speed``, on a `WallTimer`: never early, ~0.05 ms late,
where the event loop's own timers are ±0.5 ms off — ±5 ms of engine time at 10x), then
delivers the step's tokens to each request's listener. When the engine is idle, engine
time jumps to the scaled wall clock, so arrivals are stamped at their real time.

While the next steps are plain decodes of the whole batch, the driver rides a decode
run (`EngineModel.start_decode_run`) instead of stepping: it wakes only when some
listener is owed tokens (its ``--stream-interval`` is reached, or a request finishes;
owed deliveries less than ``COALESCE_WALL_S`` apart share one wake, a CPU saving at
high speeds) and delivers every request's tokens of the steps that ended by then,
still one chunk per step (per N steps) as vLLM streams. An arrival, an abort or a
scrape settles the run at that instant — the steps started by then are applied,
exactly what stepping would have done, and the step in progress is delivered at its
end — so the engine's behaviour is the same as stepping one at a time; only the CPU
cost of a busy replica drops (one wake per delivery instead of per step), which keeps
eight replicas at 10x speed from starving a 2-core machine.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence

from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.request import EngineRequest
from gpufleet.replica.wall_timer import WallTimer

Listener = Callable[[int, bool, int], None]
"""(new output tokens, finished, cached prompt tokens) for one request."""

COALESCE_WALL_S = 0.001
"""Deliveries owed less than this far apart (wall time) share one wake in a run."""


class _Ride:
    """A decode run being ridden: its requests, step start times, what was delivered,
    and — once an arrival/abort/scrape settled it early — what was applied."""

    __slots__ = ("applied", "applied_end_s", "delivered", "end_s", "finished", "ids", "starts")

    def __init__(self, ids: list[str], starts: list[float], end_s: float):
        self.ids = ids
        self.starts = starts
        self.end_s = end_s
        self.delivered = 0
        """Steps whose tokens the listeners have been given."""
        self.applied: int | None = None
        self.applied_end_s = end_s
        self.finished: frozenset[str] = frozenset()

    def end_of(self, num_steps: int) -> float:
        """When the first ``num_steps`` steps have ended."""
        return self.starts[num_steps] if num_steps < len(self.starts) else self.end_s


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
        self._ride: _Ride | None = None
        self._alarm: asyncio.Future[bool] | None = None
        """The rider's sleep: resolved True when an arrival/abort/scrape interrupts it."""
        self._timer: WallTimer | None = None
        self.decode_runs = True

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
        self.settle()
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
            self.settle()
            self.engine.abort(request_id)

    def settle(self) -> None:
        """Apply the decode run being ridden up to now (the engine is then safe to
        read and change); its owed tokens are delivered by the rider."""
        ride = self._ride
        if ride is None or ride.applied is not None:
            return
        # never before the end of what the listeners were given (a timer may fire early)
        now = max(self.now(), ride.end_of(ride.delivered))
        ride.applied = bisect_right(ride.starts, now)
        ride.applied_end_s, finished = self.engine.settle(now)
        ride.finished = frozenset(finished)
        self._engine_now = ride.applied_end_s
        self._interrupt()

    def _interrupt(self) -> None:
        alarm = self._alarm
        if alarm is not None and not alarm.done():
            alarm.set_result(True)

    async def _sleep_until(self, engine_s: float) -> bool:
        """Sleep until engine time ``engine_s`` on the `WallTimer` (module doc); True if
        interrupted first."""
        wall = self._origin + engine_s / self.speed
        if wall <= time.monotonic():
            return False
        loop = asyncio.get_running_loop()
        alarm: asyncio.Future[bool] = loop.create_future()
        self._alarm = alarm
        timer = self._timer
        if timer is None:
            timer = self._timer = WallTimer(loop)
        timer.call_at(wall, lambda: _resolve(alarm))
        try:
            return await alarm
        finally:
            timer.cancel()
            self._alarm = None

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            if self._timer is not None:
                self._timer.close()
                self._timer = None

    async def _run(self) -> None:
        engine = self.engine
        while True:
            if not engine.has_work:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._engine_now = max(self._engine_now, self.now())
            if self.decode_runs:
                end_s = engine.start_decode_run(self._engine_now)
                if end_s is not None:
                    await self._ride_run(end_s)
                    continue
            result = engine.step(self._engine_now)
            if result.is_idle:
                await asyncio.sleep(0.001)
                continue
            cached = self._cached
            for request_id, num_cached in result.cached_prompt_tokens:
                cached[request_id] = num_cached
            self._engine_now += result.duration_s
            await self._sleep_until(self._engine_now)  # nothing interrupts a plain step
            self._deliver(result.advanced, set(result.finished_ids), set(result.first_token_ids))

    async def _ride_run(self, end_s: float) -> None:
        """Deliver a planned decode run's tokens as they come due (module doc)."""
        ids, starts = self.engine.decode_run_plan()
        ride = self._ride = _Ride(ids, starts, end_s)
        num_steps = len(starts)
        tolerance = COALESCE_WALL_S * self.speed
        try:
            while ride.applied is None:
                due = self._next_due(ride, num_steps)
                due_s = ride.end_of(due)
                while due < num_steps and ride.end_of(due + 1) <= due_s + tolerance:
                    due += 1
                if await self._sleep_until(ride.end_of(due)) or ride.applied is not None:
                    break
                if due == num_steps:  # the run ended: apply it whole
                    self.settle()
                    break
                owed, ride.delivered = due - ride.delivered, due
                self._deliver_run(ride, owed, frozenset())
            # settled (every way out of the loop settles): the steps before the last
            # applied one have ended
            applied = ride.applied
            assert applied is not None
            if applied - 1 > ride.delivered:
                owed, ride.delivered = applied - 1 - ride.delivered, applied - 1
                self._deliver_run(ride, owed, frozenset())
            while await self._sleep_until(ride.applied_end_s):
                pass
            if applied > ride.delivered:
                owed, ride.delivered = applied - ride.delivered, applied
                self._deliver_run(ride, owed, ride.finished)
        finally:
            if ride.applied is None:  # cancelled mid-run: leave the engine consistent
                self.settle()
            self._ride = None

    def _next_due(self, ride: _Ride, num_steps: int) -> int:
        """Steps after which the first listener is owed tokens (at most the whole run)."""
        due = num_steps
        delivered = ride.delivered
        held, intervals, listeners = self._held, self._intervals, self._listeners
        for request_id in ride.ids:
            if request_id not in listeners:
                continue
            if request_id not in held:
                return delivered + 1
            interval = intervals[request_id]
            if interval:
                due = min(due, delivered + max(1, interval - held[request_id]))
        return due

    def _deliver_run(self, ride: _Ride, num_tokens: int, finished: frozenset[str]) -> None:
        advanced = [(i, num_tokens, num_tokens) for i in ride.ids]
        self._deliver(advanced, finished, frozenset(), per_step=True)

    def _deliver(
        self,
        advanced: Sequence[tuple[str, int, int]],
        finished: set[str] | frozenset[str],
        first: set[str] | frozenset[str],
        per_step: bool = False,
    ) -> None:
        """Hand each request its new tokens. A request with a delivery interval of N is
        told of its first token at once, then of tokens in batches of at least N (vLLM's
        ``--stream-interval``), and of its end; interval 0 (non-streaming requests) means
        first token and end only. Held tokens are summed here, so a busy replica does no
        per-token Python work for them. ``per_step``: the tokens are one per step of a
        decode run delivered at one wake (coalesced, or settled by an arrival); they still
        go out one chunk per step (per N steps), as vLLM streams them."""
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
            chunk = 1 if per_step else num_output  # a step's tokens per chunk (interval 1)
            if request_id in held:
                pending = held[request_id] + num_output
                interval = self._intervals[request_id]
                ends_hold = done or request_id in first
                if not ends_hold and (not interval or pending < interval):
                    held[request_id] = pending
                    continue
                chunk = interval if per_step and interval else pending
                # whole chunks now; the rest waits for later steps unless the hold ends
                held[request_id] = 0 if ends_hold else pending % chunk
                num_output = pending - held[request_id]
            if done:
                del listeners[request_id]
                held.pop(request_id, None)
                self._intervals.pop(request_id, None)
            while num_output > chunk:
                listener(chunk, False, cached.get(request_id, 0))
                num_output -= chunk
            listener(
                num_output,
                done,
                cached.pop(request_id, 0) if done else cached.get(request_id, 0),
            )


def _resolve(alarm: asyncio.Future[bool]) -> None:
    if not alarm.done():
        alarm.set_result(False)
