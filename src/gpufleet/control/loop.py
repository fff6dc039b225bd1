"""The control loop: gather → evaluate the policy → apply, every ``policy.interval_s``.

Each round: the signals of every gateway that answers (`snapshot`), the actuator's view
refreshed; the policy's desired replicas per deployment key; for each key whose target
differs from the actuator's active count, ``set_active`` — logged with the direction and
the policy's reason, counted in ``gpufleet_controller_decisions_total``. A round in which
no gateway answered decides nothing (no scaling on missing data). Keys the policy names
that the fleet does not have are ignored (logged once). Policy time is the controller's
clock (`clock.ControlClock`), so a policy behaves the same live and in the simulator.

Reasons: a policy may explain its decisions through ``last_decision`` (a
`gpufleet.autoscale.ScalingDecision`, as `SloAutoscaler` keeps it); the metric's
``reason`` label is its first word(s) before ``:`` (low cardinality), the log line the
whole reason. Without one the reason reads ``policy``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from gpufleet.autoscale.decision import ScalingDecision
from gpufleet.autoscale.signals import AutoscalePolicy, FleetSignals
from gpufleet.control.actuator import Actuator
from gpufleet.control.clock import ControlClock
from gpufleet.control.gateways import GatewaySet
from gpufleet.control.preemption import PreemptionHandler
from gpufleet.control.snapshot import SignalBuilder
from gpufleet.errors import GpufleetError
from gpufleet.metrics import ControllerMetrics

log = logging.getLogger("gpufleet.controller")


@dataclass(frozen=True, slots=True)
class Decision:
    key: str
    current: int
    desired: int
    reason: str

    @property
    def direction(self) -> str:
        return "up" if self.desired > self.current else "down"


class Controller:
    def __init__(
        self,
        policy: AutoscalePolicy,
        gateways: GatewaySet,
        actuator: Actuator,
        metrics: ControllerMetrics,
        clock: ControlClock,
        preemption: PreemptionHandler | None = None,
    ):
        self.policy = policy
        self.preemption = preemption
        self.gateways = gateways
        self.actuator = actuator
        self.metrics = metrics
        self.clock = clock
        self.keys = tuple(actuator.keys())
        self.builder = SignalBuilder(self.keys)
        self.last_signals: FleetSignals | None = None
        self._ignored: set[str] = set()

    async def step(self) -> list[Decision]:
        """One round (module doc); returns the decisions applied."""
        snapshots, failed = await self.gateways.snapshots()
        for url in failed:
            self.metrics.gather_failures.labels(url).inc()
        if not snapshots:
            log.warning("no gateway answered: no decision this round")
            return []
        await self.actuator.refresh()
        pending = {key: self.actuator.pending(key) for key in self.keys}
        notices = self.preemption
        signals = self.builder.build(
            snapshots,
            self.clock.now_s(),
            pending,
            notices.under_notice_by_key() if notices is not None else None,
            notices.notices_by_key() if notices is not None else None,
        )
        self.last_signals = signals
        self._export_current(signals)
        desired = self.policy.desired_replicas(signals)
        self.metrics.evaluations.inc()
        reasons = _reasons(self.policy)
        decisions = []
        for key, target in sorted(desired.items()):
            if key not in self.keys:
                if key not in self._ignored:
                    self._ignored.add(key)
                    log.warning("the policy names %r, which is not a deployment: ignored", key)
                continue
            target = max(0, int(target))
            pool, _, model = key.partition("/")
            self.metrics.desired_replicas.labels(key, pool, model).set(target)
            current = self.actuator.active(key)
            if target == current:
                continue
            decision = Decision(key, current, target, reasons.get(key, "policy"))
            log.warning(
                "scale %s %s: %d -> %d replicas (%s)",
                decision.direction, key, current, target, decision.reason,
            )  # fmt: skip
            self.metrics.decisions.labels(
                key, pool, model, decision.direction, reason_label(decision.reason)
            ).inc()
            await self.actuator.set_active(key, target)
            decisions.append(decision)
        return decisions

    def _export_current(self, signals: FleetSignals) -> None:
        for key, d in signals.deployments.items():
            for state, n in (
                ("ready", d.num_ready),
                ("starting", d.num_starting),
                ("draining", d.num_draining),
            ):
                self.metrics.current_replicas.labels(key, d.pool, d.model, state).set(n)

    async def run(self) -> None:
        """Rounds every ``policy.interval_s`` (policy time) until cancelled; a policy
        with an infinite interval is never evaluated (notices are still handled)."""
        interval_s = self.policy.interval_s
        if math.isinf(interval_s) or interval_s <= 0:
            log.info("the policy has no interval: the control loop only handles notices")
            await asyncio.Event().wait()
        while True:
            try:
                await self.step()
            except GpufleetError as exc:  # an actuator that failed: try again next round
                log.error("control round failed: %s", exc)
            await asyncio.sleep(self.clock.wall_s(interval_s))


def _reasons(policy: object) -> Mapping[str, str]:
    decision = getattr(policy, "last_decision", None)
    if isinstance(decision, ScalingDecision):
        return {key: d.reason for key, d in decision.deployments.items()}
    return {}


def reason_label(reason: str) -> str:
    """A low-cardinality label for a reason: its head before any ':' or figure."""
    head = reason.split(":", 1)[0].strip()
    words = []
    for word in head.split():
        if any(c.isdigit() for c in word):
            break
        words.append(word)
    return "-".join(words)[:40] or "policy"
