"""Acting on a preemption notice.

On a notice for a replica (`notices.Notice`):

1. it goes *draining* at every gateway replica (``POST /admin/drain``): no new requests;
   what it runs goes on (streams that outlive the notice are cut at its end and resumed
   elsewhere by the gateway, or retried before their first byte);
2. it stops counting as active, and a replacement is requested at once — in its pool, or
   on-demand when its spot pool is unhealthy (`notices.replacement_key`);
3. at the end of the notice it is retired (stopped) by the actuator.

A second notice for a replica already under notice changes nothing but may bring its end
closer. Notices for replicas the actuator does not manage, or that no gateway knows,
are refused (``NotFound``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass

from gpufleet.config import FleetConfig
from gpufleet.control.actuator import Actuator
from gpufleet.control.clock import ControlClock
from gpufleet.control.gateways import GatewaySet
from gpufleet.control.notices import Notice, SpotHealth, replacement_key
from gpufleet.errors import InvalidRequest, NotFound
from gpufleet.metrics import ControllerMetrics

log = logging.getLogger("gpufleet.controller")


@dataclass(frozen=True, slots=True)
class NoticeOutcome:
    replica_id: str
    key: str
    replacement_key: str | None
    """None when the replica was already under notice (nothing new requested)."""
    deadline_s: float
    """Controller time (policy seconds) at which the replica is stopped."""

    def describe(self) -> dict[str, object]:
        return {
            "replica": self.replica_id,
            "deployment": self.key,
            "replacement": self.replacement_key,
            "stops_at_s": round(self.deadline_s, 3),
        }


class PreemptionHandler:
    def __init__(
        self,
        config: FleetConfig,
        actuator: Actuator,
        gateways: GatewaySet,
        metrics: ControllerMetrics,
        clock: ControlClock,
        spot_health: SpotHealth | None = None,
    ):
        self._config = config
        self._actuator = actuator
        self._gateways = gateways
        self._metrics = metrics
        self._clock = clock
        self._spot_health = spot_health or SpotHealth()
        self._notice_times: dict[str, list[float]] = defaultdict(list)
        self._deadlines: dict[str, float] = {}
        self._keys: dict[str, str] = {}
        self._notices_by_key: dict[str, int] = defaultdict(int)
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()

    @property
    def under_notice(self) -> dict[str, float]:
        """Replica id → the controller time its notice ends."""
        return dict(self._deadlines)

    def under_notice_by_key(self) -> dict[str, int]:
        """Replicas under notice per deployment key (signals: ``num_notice``)."""
        counts: dict[str, int] = defaultdict(int)
        for replica in self._deadlines:
            counts[self._keys[replica]] += 1
        return dict(counts)

    def notices_by_key(self) -> dict[str, int]:
        """Notices handled per deployment key since the start (``num_notices_total``)."""
        return dict(self._notices_by_key)

    async def handle(self, notice: Notice) -> NoticeOutcome:
        if not notice.notice_s >= 0:
            raise InvalidRequest("the notice must be a non-negative number of seconds")
        async with self._lock:  # one notice at a time: replacement counts stay exact
            return await self._handle(notice)

    async def _handle(self, notice: Notice) -> NoticeOutcome:
        replica = notice.replica_id
        key = self._actuator.locate(replica)
        if key is None:
            raise NotFound(f"no replica {replica!r}", param="replica", code="replica_not_found")
        now = self._clock.now_s()
        deadline = now + notice.notice_s
        pool = key.partition("/")[0]
        if replica in self._deadlines:
            if deadline < self._deadlines[replica]:
                self._schedule(replica, deadline)
            log.info("replica %s: another notice (%s); stops at %.1f s", replica, notice.source,
                     self._deadlines[replica])  # fmt: skip
            return NoticeOutcome(replica, key, None, self._deadlines[replica])
        failed, num_known = await self._gateways.drain(replica)
        if not failed and not num_known:
            raise NotFound(
                f"no gateway knows a replica {replica!r}", param="replica", code="replica_not_found"
            )
        if failed:
            log.warning("replica %s: not drained at %s", replica, ", ".join(failed))
        self._metrics.notices.labels(notice.source, pool).inc()
        self._notices_by_key[key] += 1
        self._keys[replica] = key
        await self._actuator.refresh()  # counts as they are now, not as of the last round
        await self._actuator.leave(replica)
        times = self._notice_times[pool]
        times.append(now)
        unhealthy = self._spot_health.unhealthy(times, now)
        target = replacement_key(self._config, key, unhealthy)
        await self._actuator.set_active(target, self._actuator.active(target) + 1)
        self._metrics.replacements.labels(*target.split("/", 1)).inc()
        self._schedule(replica, deadline)
        log.warning(
            "preemption notice for %s (%s, %.0f s): draining at %d gateways, replacement in %s%s",
            replica, notice.source, notice.notice_s, num_known,
            target, " (spot pool unhealthy)" if target != key else "",
        )  # fmt: skip
        return NoticeOutcome(replica, key, target, deadline)

    def _schedule(self, replica: str, deadline: float) -> None:
        old = self._timers.pop(replica, None)
        if old is not None:
            old.cancel()
        self._deadlines[replica] = deadline
        delay = max(0.0, self._clock.wall_s(deadline - self._clock.now_s()))
        self._timers[replica] = asyncio.get_running_loop().create_task(self._retire(replica, delay))

    async def _retire(self, replica: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._timers.pop(replica, None)
        self._deadlines.pop(replica, None)
        self._keys.pop(replica, None)
        log.warning("replica %s: notice over, stopping it", replica)
        await self._actuator.retire(replica)

    async def close(self) -> None:
        timers = list(self._timers.values())
        self._timers.clear()
        for task in timers:
            task.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
