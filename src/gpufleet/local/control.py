"""The control plane of ``gpufleet up``, in-process with the gateway.

Always: the preemption handler over the local actuator, behind ``POST /admin/preempt``
on the gateway (``gpufleet preempt REPLICA --notice 30``), and the controller's metrics
on the gateway's ``/metrics``. With ``--autoscale``: the control loop too, running the
fleet's ``autoscale:`` policy (`gpufleet.autoscale.SloAutoscaler`) on engine time (the
engines' ``--speed``). The controller reaches the gateway over HTTP like a standalone
one would (set ``GPUFLEET_ADMIN_KEY`` when the gateway has API keys on).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from gpufleet.config import FleetConfig
from gpufleet.control.admin import PREEMPT_PATH, preempt_route
from gpufleet.control.clock import ControlClock
from gpufleet.control.gateways import GatewaySet
from gpufleet.control.loop import Controller
from gpufleet.control.notices import SpotHealth
from gpufleet.control.policies import make_policy
from gpufleet.control.preemption import PreemptionHandler
from gpufleet.errors import ConfigError
from gpufleet.gateway.service import Gateway
from gpufleet.local.actuator import LocalActuator
from gpufleet.local.launcher import LocalFleet
from gpufleet.metrics import ControllerMetrics

ADMIN_KEY_ENV = "GPUFLEET_ADMIN_KEY"


@dataclass
class LocalControl:
    actuator: LocalActuator
    gateways: GatewaySet
    preemption: PreemptionHandler
    controller: Controller | None
    loop_task: asyncio.Task[None] | None

    @classmethod
    def start(
        cls, config: FleetConfig, gateway: Gateway, local: LocalFleet, autoscale: bool
    ) -> LocalControl:
        if autoscale and not config.gateway.admin_enabled:
            raise ConfigError(
                "gateway.admin_enabled: --autoscale needs the admin routes (the controller "
                "reads /admin/endpoints and drains through /admin/drain)"
            )
        clock = ControlClock(local.speed)
        metrics = ControllerMetrics(gateway.proxy.metrics.registry)
        host = "127.0.0.1" if gateway.host in ("0.0.0.0", "::", "") else gateway.host
        gateways = GatewaySet([f"http://{host}:{gateway.port}"], os.environ.get(ADMIN_KEY_ENV))
        actuator = LocalActuator(config, local, gateway.fleet)
        settings = config.autoscale
        preemption = PreemptionHandler(
            config, actuator, gateways, metrics, clock,
            SpotHealth(settings.spot_notices_to_fallback, settings.spot_backoff_s),
        )  # fmt: skip
        if config.gateway.admin_enabled:
            gateway.app.add_admin_route("POST", PREEMPT_PATH, preempt_route(preemption, clock))
        controller = None
        task = None
        if autoscale:
            policy = make_policy(config, enabled=True)
            controller = Controller(policy, gateways, actuator, metrics, clock, preemption)
            task = asyncio.get_running_loop().create_task(controller.run())
        return cls(actuator, gateways, preemption, controller, task)

    async def close(self) -> None:
        if self.loop_task is not None:
            self.loop_task.cancel()
            await asyncio.gather(self.loop_task, return_exceptions=True)
        await self.preemption.close()
        await self.actuator.close()
        await self.gateways.close()
