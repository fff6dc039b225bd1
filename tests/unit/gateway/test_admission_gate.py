"""The admission gate re-routes a blocked queue head only when the fleet's load changed."""

from __future__ import annotations

import asyncio

from gpufleet.config import AdmissionConfig
from gpufleet.gateway.admission_gate import AdmissionGate
from gpufleet.types import Endpoint, RouteRequest, RoutingDecision


def test_a_blocked_head_is_routed_again_only_after_the_load_version_changes() -> None:
    attempts: list[RouteRequest] = []
    version = [0]
    capacity = [False]
    replica = Endpoint(id="r0", models=frozenset({"m"}))

    def route(request: RouteRequest) -> RoutingDecision | None:
        attempts.append(request)
        return RoutingDecision(endpoint=replica) if capacity[0] else None

    async def scenario() -> RoutingDecision:
        gate = AdmissionGate(AdmissionConfig(), route, lambda _: True, lambda _: version[0])
        waiter = asyncio.ensure_future(gate.wait(RouteRequest(model="m"), "t", 1e9))
        await asyncio.sleep(0)
        assert len(attempts) == 1, "the arrival's own pump"
        for _ in range(50):  # arrivals, completions, ticks: nothing changed
            gate.pump("m")
        assert len(attempts) == 1
        version[0] += 1  # a scrape landed, still no room
        gate.pump("m")
        gate.pump("m")
        assert len(attempts) == 2
        capacity[0] = True
        gate.pump("m")
        assert len(attempts) == 2, "room without a version change is not looked at"
        version[0] += 1
        gate.pump("m")
        decision = await waiter
        await gate.close()
        return decision

    decision = asyncio.run(scenario())
    assert decision.endpoint is replica and len(attempts) == 3
