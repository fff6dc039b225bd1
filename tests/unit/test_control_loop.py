"""The control loop against real gateways (in-process, on loopback): signals gathered over
HTTP, the policy's targets applied through the actuator, decisions logged and exported."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpufleet.autoscale.decision import DeploymentDecision, ScalingDecision
from gpufleet.autoscale.signals import FleetSignals
from gpufleet.config import FleetConfig, parse_config
from gpufleet.control.clock import ControlClock
from gpufleet.control.gateways import GatewaySet
from gpufleet.control.loop import Controller, reason_label
from gpufleet.gateway.service import Gateway
from gpufleet.metrics import ControllerMetrics
from gpufleet.types import EndpointHealth, RouteRequest

SPOT, ON_DEMAND = "spot/m", "od/m"


def control_config(num_spot: int = 3, num_on_demand: int = 1) -> FleetConfig:
    """Two pools of model ``m`` whose static endpoints are closed loopback ports: the
    gateways never reach them, the tests set their states."""
    return parse_config(
        {
            "gateway": {"access_log": "off", "shutdown_grace_s": 0},
            "models": [{"name": "m", "spec": "llama-3-8b"}],
            "pools": [
                {"name": "spot", "gpu": "l40s", "capacity": "spot", "price_usd_per_gpu_hour": 1.1,
                 "deployments": [{"model": "m", "endpoints": [
                     f"http://127.0.0.1:{9 + i}" for i in range(num_spot)]}]},
                {"name": "od", "gpu": "h100-sxm", "price_usd_per_gpu_hour": 6.9,
                 "deployments": [{"model": "m", "endpoints": [
                     f"http://127.0.0.1:{29 + i}" for i in range(num_on_demand)]}]},
            ],
            "health": {"interval_s": 3600},
            "scrape": {"enabled": False},
        }
    )  # fmt: skip


async def start_gateway(config: FleetConfig) -> tuple[Gateway, str]:
    gateway = Gateway.build(config)
    port = await gateway.start("127.0.0.1", 0)
    for endpoint in gateway.fleet.endpoints.values():
        endpoint.health = EndpointHealth.HEALTHY
    return gateway, f"http://127.0.0.1:{port}"


def with_gateways(
    n: int, scenario: Callable[[list[Gateway], GatewaySet], Awaitable[None]], **kw: int
) -> None:
    """Run ``scenario`` against ``n`` live gateways over the same fleet."""

    async def main() -> None:
        started = [await start_gateway(control_config(**kw)) for _ in range(n)]
        gateways = GatewaySet([url for _, url in started])
        try:
            await scenario([g for g, _ in started], gateways)
        finally:
            await gateways.close()
            for gateway, _ in started:
                await gateway.shutdown()

    asyncio.run(main())


@dataclass
class RecordingActuator:
    """An in-memory actuator: counts per key, every call recorded."""

    counts: dict[str, int]
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    leaving: set[str] = field(default_factory=set)
    num_pending: dict[str, int] = field(default_factory=dict)

    def keys(self) -> Iterable[str]:
        return tuple(self.counts)

    def active(self, key: str) -> int:
        return self.counts[key]

    def pending(self, key: str) -> int:
        return self.num_pending.get(key, 0)

    def locate(self, replica_id: str) -> str | None:
        key = replica_id.rpartition("/")[0]
        return key if key in self.counts else None

    async def refresh(self) -> None:
        self.calls.append(("refresh", "", 0))

    async def set_active(self, key: str, replicas: int) -> None:
        self.calls.append(("set_active", key, replicas))
        self.counts[key] = replicas

    async def leave(self, replica_id: str) -> None:
        self.calls.append(("leave", replica_id, 0))
        self.leaving.add(replica_id)
        key = self.locate(replica_id)
        assert key is not None
        self.counts[key] -= 1

    async def retire(self, replica_id: str) -> None:
        self.calls.append(("retire", replica_id, 0))
        self.leaving.discard(replica_id)

    async def close(self) -> None:
        return None


@dataclass
class FixedPolicy:
    """Wants ``targets``; remembers what it saw; explains itself like SloAutoscaler."""

    targets: Mapping[str, int]
    reason: str = "demand 12.5 req/s > usable 8.0 req/s"
    seen: list[FleetSignals] = field(default_factory=list)
    last_decision: ScalingDecision | None = None

    @property
    def interval_s(self) -> float:
        return 10.0

    def desired_replicas(self, signals: FleetSignals) -> Mapping[str, int]:
        self.seen.append(signals)
        self.last_decision = ScalingDecision(
            signals.now_s,
            {
                key: DeploymentDecision(key, "m", key.split("/")[0], 0, n, self.reason)
                for key, n in self.targets.items()
            },
            0.0,
        )
        return dict(self.targets)


def samples(metrics: ControllerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: ControllerMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


def test_signals_are_gathered_from_every_gateway_and_merged() -> None:
    async def scenario(gateways: list[Gateway], client: GatewaySet) -> None:
        a, b = gateways
        for gateway in (a, b):
            gateway.fleet.endpoints["spot/m/1"].draining = gateway is b
            gateway.fleet.endpoints["spot/m/2"].health = EndpointHealth.STARTING
            gateway.fleet.endpoints["od/m/0"].health = EndpointHealth.UNHEALTHY
        a.fleet.endpoints["spot/m/0"].on_dispatch(
            RouteRequest(model="m", prompt_tokens=80, max_tokens=20)
        )
        b.fleet.endpoints["spot/m/0"].on_dispatch(
            RouteRequest(model="m", prompt_tokens=80, max_tokens=20)
        )
        b.fleet.endpoints["spot/m/1"].on_dispatch(
            RouteRequest(model="m", prompt_tokens=80, max_tokens=20)
        )
        for _ in range(3):
            a.proxy.metrics.outcome("m", "success")
        b.proxy.metrics.outcome("m", "backend_error")
        actuator = RecordingActuator({SPOT: 3, ON_DEMAND: 1}, num_pending={ON_DEMAND: 1})
        policy = FixedPolicy({})
        controller = Controller(policy, client, actuator, ControllerMetrics(), ControlClock())
        assert await controller.step() == []
        signals = policy.seen[0]
        spot, od = signals.deployments[SPOT], signals.deployments[ON_DEMAND]
        assert (spot.num_ready, spot.num_starting, spot.num_draining) == (1, 1, 1)
        assert spot.num_in_flight == 3
        assert (od.num_ready, od.num_starting, od.num_draining) == (0, 1, 0)
        assert signals.num_arrivals_total_by_model == {"m": 4 + 3}
        metrics = controller.metrics
        labels = {"deployment": SPOT, "pool": "spot", "model": "m"}
        current = "gpufleet_controller_current_replicas"
        assert value(metrics, current, state="ready", **labels) == 1
        assert value(metrics, current, state="draining", **labels) == 1

    with_gateways(2, scenario)


def test_the_policy_targets_are_applied_logged_and_exported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(gateways: list[Gateway], client: GatewaySet) -> None:
        actuator = RecordingActuator({SPOT: 3, ON_DEMAND: 1})
        policy = FixedPolicy({SPOT: 5, ON_DEMAND: 1, "nowhere/m": 4})
        controller = Controller(policy, client, actuator, ControllerMetrics(), ControlClock())
        with caplog.at_level(logging.INFO, logger="gpufleet.controller"):
            decisions = await controller.step()
            policy.targets = {SPOT: 2}
            policy.reason = "idle for 900 s ≥ 900 s: scale to minimum"
            decisions += await controller.step()
        assert [(d.key, d.current, d.desired, d.direction) for d in decisions] == [
            (SPOT, 3, 5, "up"),
            (SPOT, 5, 2, "down"),
        ]
        assert [c for c in actuator.calls if c[0] == "set_active"] == [
            ("set_active", SPOT, 5),
            ("set_active", SPOT, 2),
        ], "only changed deployments are touched; unknown keys never"
        text = caplog.text
        assert f"scale up {SPOT}: 3 -> 5 replicas (demand 12.5 req/s > usable 8.0 req/s)" in text
        assert f"scale down {SPOT}: 5 -> 2 replicas (idle for 900 s" in text
        assert "'nowhere/m', which is not a deployment" in text
        metrics = controller.metrics
        labels = {"deployment": SPOT, "pool": "spot", "model": "m"}
        assert value(metrics, "gpufleet_controller_desired_replicas", **labels) == 2
        decided = "gpufleet_controller_decisions_total"
        assert value(metrics, decided, direction="up", reason="demand", **labels) == 1
        assert value(metrics, decided, direction="down", reason="idle-for", **labels) == 1
        assert value(metrics, "gpufleet_controller_evaluations_total") == 2

    with_gateways(1, scenario)


def test_no_decision_is_taken_when_no_gateway_answers() -> None:
    async def main() -> None:
        client = GatewaySet(["http://127.0.0.1:9"], timeout_s=0.5)
        actuator = RecordingActuator({SPOT: 3})
        policy = FixedPolicy({SPOT: 5})
        metrics = ControllerMetrics()
        controller = Controller(policy, client, actuator, metrics, ControlClock())
        try:
            assert await controller.step() == []
        finally:
            await client.close()
        assert actuator.calls == [] and policy.seen == []
        failures = "gpufleet_controller_gather_failures_total"
        assert value(metrics, failures, gateway="http://127.0.0.1:9") == 1

    asyncio.run(main())


def test_the_loop_runs_on_policy_time() -> None:
    """A 10 s policy interval at time scale 100 is 0.1 s of wall time."""

    async def scenario(gateways: list[Gateway], client: GatewaySet) -> None:
        actuator = RecordingActuator({SPOT: 3, ON_DEMAND: 1})
        policy = FixedPolicy({SPOT: 3})
        clock = ControlClock(scale=100.0)
        controller = Controller(policy, client, actuator, ControllerMetrics(), clock)
        task = asyncio.create_task(controller.run())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while len(policy.seen) < 3 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert len(policy.seen) >= 3
        times = [s.now_s for s in policy.seen[:3]]
        assert times[1] - times[0] >= 10.0 and times[2] - times[1] >= 10.0

    with_gateways(1, scenario)


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("demand 12.5 req/s (forecast 3.0 at t+95 s) > usable 8.0 req/s", "demand"),
        ("idle for 900 s ≥ 900 s: scale to minimum", "idle-for"),
        ("hold: demand 3 req/s", "hold"),
        ("spot pool unhealthy: 2 spot notices in 900 s", "spot-pool-unhealthy"),
        ("", "policy"),
    ],
)
def test_reason_labels_stay_low_cardinality(reason: str, label: str) -> None:
    assert reason_label(reason) == label
