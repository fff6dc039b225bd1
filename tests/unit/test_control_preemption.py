"""Preemption notices: drained at every gateway at once, replacement requested at once
(on-demand when the spot pool is unhealthy), retired at the end of the notice; the
notice sources and the admin route's input checks."""

from __future__ import annotations

import asyncio
import re

import pytest

from gpufleet.config import parse_config
from gpufleet.control.admin import preempt_route
from gpufleet.control.clock import ControlClock
from gpufleet.control.gateways import GatewaySet
from gpufleet.control.notices import (
    NOTICE_TAINTS,
    Notice,
    SpotHealth,
    notice_from_taints,
    replacement_key,
)
from gpufleet.control.preemption import PreemptionHandler
from gpufleet.errors import InvalidRequest, NotFound
from gpufleet.gateway.service import Gateway
from gpufleet.metrics import ControllerMetrics
from tests.unit.test_control_loop import (
    ON_DEMAND,
    SPOT,
    RecordingActuator,
    control_config,
    value,
    with_gateways,
)

SCALE = 100.0
"""Controller time runs 100x: a 10 s notice lasts 0.1 s."""


def handler_for(
    client: GatewaySet, actuator: RecordingActuator, metrics: ControllerMetrics
) -> PreemptionHandler:
    return PreemptionHandler(
        control_config(), actuator, client, metrics, ControlClock(SCALE), SpotHealth(2, 600.0)
    )


async def wait_for(condition: object, what: str, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def test_a_notice_drains_everywhere_requests_a_replacement_and_retires_at_its_end() -> None:
    async def scenario(gateways: list[Gateway], client: GatewaySet) -> None:
        actuator = RecordingActuator({SPOT: 3, ON_DEMAND: 1})
        metrics = ControllerMetrics()
        handler = handler_for(client, actuator, metrics)
        try:
            outcome = await handler.handle(Notice("spot/m/1", 10.0, "admin"))
            assert all(g.fleet.endpoints["spot/m/1"].draining for g in gateways)
            assert not any(g.fleet.endpoints["spot/m/0"].draining for g in gateways)
            assert (outcome.key, outcome.replacement_key) == (SPOT, SPOT)
            assert actuator.calls == [
                ("refresh", "", 0),
                ("leave", "spot/m/1", 0),
                ("set_active", SPOT, 3),
            ]
            assert handler.under_notice_by_key() == {SPOT: 1}
            assert handler.notices_by_key() == {SPOT: 1}

            again = await handler.handle(Notice("spot/m/1", 30.0, "admin"))
            assert again.replacement_key is None, "already under notice: nothing new"
            assert again.deadline_s == outcome.deadline_s
            assert len(actuator.calls) == 3

            await wait_for(lambda: ("retire", "spot/m/1", 0) in actuator.calls, "retirement")
            assert handler.under_notice == {}
            assert handler.under_notice_by_key() == {}
        finally:
            await handler.close()
        assert value(metrics, "gpufleet_controller_notices_total", source="admin", pool="spot") == 1
        assert value(metrics, "gpufleet_controller_replacements_total", pool="spot", model="m") == 1

    with_gateways(2, scenario)


def test_the_replica_is_stopped_at_the_end_of_its_notice_not_before() -> None:
    async def scenario(gateways: list[Gateway], client: GatewaySet) -> None:
        actuator = RecordingActuator({SPOT: 3, ON_DEMAND: 1})
        handler = handler_for(client, actuator, ControllerMetrics())
        loop = asyncio.get_running_loop()
        try:
            started = loop.time()
            await handler.handle(Notice("spot/m/0", 20.0, "admin"))  # 0.2 s wall
            await wait_for(lambda: ("retire", "spot/m/0", 0) in actuator.calls, "retirement")
            assert loop.time() - started >= 0.2 - 0.01
        finally:
            await handler.close()

    with_gateways(1, scenario)


def test_a_second_notice_in_an_unhealthy_spot_pool_goes_on_demand() -> None:
    async def scenario(gateways: list[Gateway], client: GatewaySet) -> None:
        actuator = RecordingActuator({SPOT: 3, ON_DEMAND: 1})
        handler = handler_for(client, actuator, ControllerMetrics())
        try:
            first = await handler.handle(Notice("spot/m/0", 1000.0, "karpenter.sh/disrupted"))
            second = await handler.handle(Notice("spot/m/1", 1000.0, "karpenter.sh/disrupted"))
            assert first.replacement_key == SPOT
            assert second.replacement_key == ON_DEMAND
            assert actuator.counts == {SPOT: 2, ON_DEMAND: 2}
        finally:
            await handler.close()

    with_gateways(1, scenario)


def test_a_notice_for_an_unknown_replica_is_refused() -> None:
    async def scenario(gateways: list[Gateway], client: GatewaySet) -> None:
        actuator = RecordingActuator({SPOT: 3, ON_DEMAND: 1})
        handler = handler_for(client, actuator, ControllerMetrics())
        with pytest.raises(NotFound, match="no replica 'elsewhere/m/0'"):
            await handler.handle(Notice("elsewhere/m/0", 10.0, "admin"))
        assert actuator.calls == []
        await handler.close()

    with_gateways(1, scenario)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'replica' (an endpoint id) is required"),
        ({"replica": ""}, "'replica'"),
        ({"replica": 3}, "'replica'"),
        ({"replica": "spot/m/0", "notice_s": -1}, "'notice_s' must be a number"),
        ({"replica": "spot/m/0", "notice_s": "30"}, "'notice_s' must be a number"),
        ({"replica": "spot/m/0", "notice_s": True}, "'notice_s' must be a number"),
        ({"replica": "spot/m/0", "notice_s": 1e9}, "'notice_s' must be a number"),
    ],
)
def test_the_admin_route_refuses_bad_input(body: dict[str, object], message: str) -> None:
    async def scenario(gateways: list[Gateway], client: GatewaySet) -> None:
        actuator = RecordingActuator({SPOT: 3, ON_DEMAND: 1})
        handler = handler_for(client, actuator, ControllerMetrics())
        route = preempt_route(handler, ControlClock(SCALE))
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            await route(body)
        answer = await route({"replica": "spot/m/2", "notice_s": 30})
        assert answer["replacement"] == SPOT and answer["notice_wall_s"] == 0.3
        await handler.close()

    with_gateways(1, scenario)


def test_notice_taints_are_recognised_by_key() -> None:
    assert notice_from_taints([("aws-node-termination-handler/spot-itn", "NoSchedule")]) == (
        "aws-node-termination-handler/spot-itn",
        120.0,
    )
    assert notice_from_taints([("nvidia.com/gpu", "NoSchedule")]) is None
    gke = notice_from_taints(
        [("nvidia.com/gpu", "NoSchedule"), ("cloud.google.com/impending-node-termination", None)]
    )
    assert gke == ("cloud.google.com/impending-node-termination", 30.0)
    assert "karpenter.sh/disrupted" in NOTICE_TAINTS


def test_replacements_go_to_the_cheapest_on_demand_pool_only_when_spot_is_unhealthy() -> None:
    config = parse_config(
        {
            "models": [{"name": "m"}, {"name": "n"}],
            "pools": [
                {"name": "spot", "gpu": "l40s", "capacity": "spot",
                 "deployments": [{"model": "m"}, {"model": "n"}]},
                {"name": "h100", "gpu": "h100-sxm", "price_usd_per_gpu_hour": 6.9,
                 "deployments": [{"model": "m"}]},
                {"name": "l40s", "gpu": "l40s", "price_usd_per_gpu_hour": 1.9,
                 "gpus_per_replica": 2, "deployments": [{"model": "m"}]},
            ],
        }
    )  # fmt: skip
    assert replacement_key(config, "spot/m", spot_pool_unhealthy=False) == "spot/m"
    assert replacement_key(config, "spot/m", spot_pool_unhealthy=True) == "l40s/m"
    assert replacement_key(config, "spot/n", spot_pool_unhealthy=True) == "spot/n", "no other"
    assert replacement_key(config, "h100/m", spot_pool_unhealthy=True) == "h100/m"


def test_a_spot_pool_is_unhealthy_after_enough_notices_within_the_window() -> None:
    health = SpotHealth(unhealthy_after=2, window_s=600.0)
    assert not health.unhealthy([100.0], 100.0)
    assert health.unhealthy([100.0, 650.0], 650.0)
    assert not health.unhealthy([0.0, 650.0], 650.0), "the first one is too old"
