"""Assembles and runs one gateway process: fleet, routing profile, proxy, HTTP server.

Shutdown (SIGINT/SIGTERM): stop accepting connections, let in-flight
requests finish for up to ``gateway.shutdown_grace_s``, then close.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gpufleet.api.app import GatewayApp
from gpufleet.api.server import HttpServer
from gpufleet.backends.discovery_k8s import run_kubernetes_discovery
from gpufleet.collector import settle_heap
from gpufleet.config import FleetConfig
from gpufleet.errors import GpufleetError
from gpufleet.gateway.access_log import AccessLog
from gpufleet.gateway.fleet import FleetState, static_endpoint_specs
from gpufleet.gateway.proxy import Proxy
from gpufleet.metrics import GatewayMetrics
from gpufleet.routing.profile import RoutingProfile
from gpufleet.tenancy.guard import TenancyGuard

log = logging.getLogger("gpufleet.gateway")
ACCESS_LOG_FLUSH_S = 0.2


@dataclass
class Gateway:
    config: FleetConfig
    fleet: FleetState
    proxy: Proxy
    app: GatewayApp
    server: HttpServer
    host: str = ""
    port: int = 0
    discovery: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, config: FleetConfig) -> Gateway:
        fleet = FleetState(config.health, config.scrape)
        for spec in static_endpoint_specs(config):
            fleet.add(spec)
        routing = config.routing
        profile = RoutingProfile.from_config(routing.profile, routing.active_profile())
        proxy = Proxy(
            config, fleet, profile, GatewayMetrics(), AccessLog(config.gateway.access_log)
        )
        if config.tenancy.enabled:  # tenancy: API keys on
            proxy.tenancy = TenancyGuard(config.tenancy, proxy.metrics.registry)
        app = GatewayApp(proxy)
        server = HttpServer(app, config.gateway.max_body_bytes, app.on_handler_error)
        server.per_client.limit = config.gateway.max_connections_per_client
        return cls(config, fleet, proxy, app, server)

    async def start(self, host: str, port: int) -> int:
        await self.fleet.probe_all()
        await self.fleet.start()
        self.discovery = [
            asyncio.get_running_loop().create_task(
                run_kubernetes_discovery(self.config, pool, self.fleet)
            )
            for pool in self.config.pools
            if pool.discovery is not None
        ]
        if self.discovery:
            await asyncio.sleep(0)  # let each source fail fast on a missing cluster
            for task in self.discovery:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        if self.proxy.tenancy is not None:  # tenancy: load the key hashes kept in Redis
            await self.proxy.tenancy.start()
        # Everything built so far lives as long as the process: out of the collector's
        # sight, so a full collection on the request path walks only request objects (a
        # long-tail latency fix measured by bench-overhead), and fewer full collections
        # under a flood of queued requests (bench-routing's overload run)
        settle_heap()
        self.port = await self.server.start(host, port)
        self.host = host
        return self.port

    def num_in_flight(self) -> int:
        return sum(e.num_in_flight for e in self.fleet.endpoints.values())

    async def shutdown(self) -> None:
        self.server.stop_accepting()
        for conn in self.server.idle_connections():
            conn.close()
        deadline = asyncio.get_running_loop().time() + self.config.gateway.shutdown_grace_s
        while self.num_in_flight() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        self.server.close_all()
        for task in self.discovery:
            task.cancel()
        await asyncio.gather(*self.discovery, return_exceptions=True)
        await self.fleet.stop()
        if self.proxy.tenancy is not None:
            await self.proxy.tenancy.close()
        self.proxy.access_log.close()


async def serve(
    config: FleetConfig,
    host: str,
    port: int,
    banner: Callable[[Gateway], str] | None = None,
) -> None:
    """Run a gateway until SIGINT/SIGTERM, then shut down gracefully."""
    gateway = await start_gateway(config, host, port)

    async def announce_drain() -> None:
        log.warning("shutting down: draining %d in-flight requests", gateway.num_in_flight())

    await run_until_signalled(gateway, (banner or _default_banner)(gateway), announce_drain)


async def start_gateway(config: FleetConfig, host: str, port: int) -> Gateway:
    """Build a gateway and listen; a port that cannot be bound is a `GpufleetError` (with
    the fleet's background tasks stopped)."""
    gateway = Gateway.build(config)
    try:
        await gateway.start(host, port)
    except OSError as exc:
        await gateway.fleet.stop()
        raise GpufleetError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return gateway


async def run_until_signalled(
    gateway: Gateway,
    banner: str,
    before_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Print the banners, flush the access log periodically, and on SIGINT/SIGTERM run
    ``before_shutdown`` then shut the gateway down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(banner, file=sys.stderr, flush=True)
    print(_tenancy_banner(gateway.config), file=sys.stderr, flush=True)
    flusher = loop.create_task(_flush_access_log(gateway))
    await stop.wait()
    flusher.cancel()
    if before_shutdown is not None:
        await before_shutdown()
    await gateway.shutdown()


def _default_banner(gateway: Gateway) -> str:
    ready = gateway.fleet.ready_models(m.name for m in gateway.config.models)
    states = ", ".join(f"{m}={'ready' if ok else 'not ready'}" for m, ok in ready.items())
    return (
        f"gpufleet gateway listening on http://{gateway.host}:{gateway.port} "
        f"({len(gateway.fleet.endpoints)} endpoints; {states})"
    )


def _tenancy_banner(config: FleetConfig) -> str:
    tenancy = config.tenancy
    if not tenancy.enabled:
        return "gpufleet gateway is OPEN: no API keys configured (anyone reaching it may use it)"
    where = "Redis" if tenancy.store == "redis" else "this process"
    return (
        f"gpufleet gateway requires API keys: {len(tenancy.keys)} in config"
        f"{' + those in Redis' if tenancy.store == 'redis' else ''}; quotas kept in {where}"
    )


async def _flush_access_log(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(ACCESS_LOG_FLUSH_S)
        gateway.proxy.access_log.flush()
