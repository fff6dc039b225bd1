"""Starts simulated engine processes for the deployments of a fleet that have no endpoints.

Each engine is a ``gpufleet engine`` child process on a free loopback port,
asked to die with its parent (``PR_SET_PDEATHSIG``) so that nothing outlives
``gpufleet up`` even when it is killed hard.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, replace

from gpufleet.backends.client import fetch
from gpufleet.backends.connection import ConnectionPool
from gpufleet.config import DeploymentConfig, FleetConfig, PoolConfig
from gpufleet.errors import BackendError, GpufleetError

PR_SET_PDEATHSIG = 1


@dataclass
class LocalEngine:
    model: str
    pool: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalFleet:
    """The simulated engines of one ``gpufleet up``."""

    def __init__(self, speed: float = 1.0, quiet: bool = True):
        self.speed = speed
        self.quiet = quiet
        self.engines: list[LocalEngine] = []

    def start_engine(self, model: str, spec: str, pool: PoolConfig) -> LocalEngine:
        port = free_port()
        args = [
            sys.executable, "-m", "gpufleet", "engine", "--model", spec, "--gpu", pool.gpu,
            "--tp", str(pool.gpus_per_replica), "--served-model-name", model,
            "--port", str(port), "--speed", str(self.speed),
        ]  # fmt: skip
        output = subprocess.DEVNULL if self.quiet else None
        process = subprocess.Popen(args, stdout=output, stderr=output, preexec_fn=_die_with_parent)
        engine = LocalEngine(model, pool.name, port, process)
        self.engines.append(engine)
        return engine

    def launch(self, config: FleetConfig) -> FleetConfig:
        """Start engines for every deployment without endpoints; return the config with
        their URLs filled in."""
        pools = []
        for pool in config.pools:
            deployments: list[DeploymentConfig] = []
            for deployment in pool.deployments:
                if deployment.endpoints or deployment.replicas == 0:
                    deployments.append(deployment)
                    continue
                spec = config.model(deployment.model).spec or deployment.model
                urls = tuple(
                    self.start_engine(deployment.model, spec, pool).url
                    for _ in range(deployment.replicas)
                )
                deployments.append(replace(deployment, endpoints=urls))
            pools.append(replace(pool, deployments=tuple(deployments)))
        return replace(config, pools=tuple(pools))

    async def wait_healthy(self, timeout_s: float = 20.0) -> None:
        """Wait until every engine answers /health; raise if one exits or times out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        for engine in self.engines:
            await wait_engine_healthy(engine, max(0.0, deadline - loop.time()), timeout_s)

    async def stop_engine(self, engine: LocalEngine, timeout_s: float = 5.0) -> None:
        """SIGTERM one engine (it finishes nothing: its notice is over), SIGKILL after
        ``timeout_s``; forget it."""
        if engine in self.engines:
            self.engines.remove(engine)
        process = engine.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while process.poll() is None:
            if loop.time() > deadline:
                process.kill()
                break
            await asyncio.sleep(0.02)
        await asyncio.to_thread(process.wait)

    def stop(self, timeout_s: float = 5.0) -> None:
        for engine in self.engines:
            if engine.process.poll() is None:
                engine.process.send_signal(signal.SIGTERM)
        for engine in self.engines:
            try:
                engine.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                engine.process.kill()
                engine.process.wait()
        self.engines.clear()


async def wait_engine_healthy(
    engine: LocalEngine, timeout_s: float = 20.0, reported_timeout_s: float | None = None
) -> None:
    """Wait until ``engine`` answers /health; raise if it exits or ``timeout_s`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pool = ConnectionPool(engine.url, "127.0.0.1", engine.port)
    try:
        while True:
            if engine.process.poll() is not None:
                raise GpufleetError(
                    f"simulated engine for {engine.model} in pool {engine.pool} exited "
                    f"with status {engine.process.returncode} (run `gpufleet engine` "
                    "by hand to see why)"
                )
            try:
                status, _, _ = await fetch(pool, b"127.0.0.1", "GET", "/health", timeout_s=1.0)
                if status == 200:
                    return
            except BackendError:
                pass
            if loop.time() > deadline:
                shown = timeout_s if reported_timeout_s is None else reported_timeout_s
                raise GpufleetError(f"engine {engine.url} not healthy in {shown} s")
            await asyncio.sleep(0.05)
    finally:
        pool.close()
