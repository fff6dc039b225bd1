"""``gpufleet controller``: the control loop as its own process.

Assembles the gateways' client, the actuator (Kubernetes: the engine Deployments'
scale subresource and a Node watch for spot notices; or none: decisions only logged and
exported), the preemption handler, the policy (the fleet's ``autoscale:`` section; with
it off, only notices are handled) and its own HTTP server (``/health``, ``/metrics``,
``POST /admin/preempt``), then runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass

from lightkube import AsyncClient
from lightkube.core.exceptions import ConfigError as KubeConfigError

from gpufleet.api.app import ControlPlaneApp
from gpufleet.api.server import HttpServer
from gpufleet.config import FleetConfig
from gpufleet.control.actuator import Actuator
from gpufleet.control.admin import PREEMPT_PATH, preempt_route
from gpufleet.control.clock import ControlClock
from gpufleet.control.gateways import GatewaySet
from gpufleet.control.k8s_actuator import KubernetesActuator
from gpufleet.control.loop import Controller
from gpufleet.control.node_watch import NodeWatcher
from gpufleet.control.notices import SpotHealth
from gpufleet.control.observer import ObservingActuator
from gpufleet.control.policies import make_policy
from gpufleet.control.preemption import PreemptionHandler
from gpufleet.errors import ConfigError, GpufleetError
from gpufleet.metrics import ControllerMetrics

log = logging.getLogger("gpufleet.controller")
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class ControllerOptions:
    gateways: tuple[str, ...]
    actuator: str | None = None
    """``kubernetes``, ``none``, or None: kubernetes when a pool uses kubernetes discovery."""
    autoscale: bool = False
    host: str = "127.0.0.1"
    port: int = 9090
    admin_key: str | None = None


def actuator_kind(config: FleetConfig, requested: str | None) -> str:
    if requested is not None:
        return requested
    uses_kubernetes = any(p.discovery is not None for p in config.pools)
    return "kubernetes" if uses_kubernetes else "none"


async def run_controller(
    config: FleetConfig, options: ControllerOptions, client: AsyncClient | None = None
) -> None:
    for url in options.gateways:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--gateway {url!r}: not an http(s) URL")
    kind = actuator_kind(config, options.actuator)
    own_client = False
    actuator: Actuator
    if kind == "kubernetes":
        if client is None:
            try:
                client = AsyncClient()
            except KubeConfigError as exc:
                raise ConfigError(f"--actuator kubernetes: no Kubernetes access: {exc}") from None
            own_client = True
        actuator = KubernetesActuator(config, client)
    else:
        actuator = ObservingActuator(config)
    clock = ControlClock()
    metrics = ControllerMetrics()
    gateways = GatewaySet(options.gateways, options.admin_key)
    settings = config.autoscale
    preemption = PreemptionHandler(
        config, actuator, gateways, metrics, clock,
        SpotHealth(settings.spot_notices_to_fallback, settings.spot_backoff_s),
    )  # fmt: skip
    policy = make_policy(config, options.autoscale)
    controller = Controller(policy, gateways, actuator, metrics, clock, preemption)
    app = ControlPlaneApp(
        metrics.exposition, {("POST", PREEMPT_PATH): preempt_route(preemption, clock)}
    )
    server = HttpServer(app, MAX_BODY_BYTES, app.on_handler_error)
    tasks: list[asyncio.Task[None]] = []
    try:
        try:
            port = await server.start(options.host, options.port)
        except OSError as exc:
            raise GpufleetError(
                f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}"
            ) from None
        loop = asyncio.get_running_loop()
        tasks.append(loop.create_task(controller.run()))
        if isinstance(actuator, KubernetesActuator) and client is not None:
            namespaces = {w.namespace for w in actuator.workloads.values()}
            watcher = NodeWatcher(config, client, namespaces, preemption.handle)
            tasks.append(loop.create_task(watcher.run()))
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        every = f"every {policy.interval_s:g} s" if options.autoscale else "off"
        print(
            f"gpufleet controller on http://{options.host}:{port} (/metrics, POST "
            f"{PREEMPT_PATH}); gateways: {', '.join(gateways.urls)}; actuator: {kind}; "
            f"autoscaling: {every}",
            file=sys.stderr,
            flush=True,
        )
        waiter = loop.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.stop_accepting()
        server.close_all()
        await preemption.close()
        await actuator.close()
        await gateways.close()
        if own_client and client is not None:
            await client.close()
