"""The real-vLLM tier: two vLLM CPU servers for the whole session, timed.

Run by ``make test-vllm`` (never by ``make test``: tests/conftest.py leaves
this folder out unless it is named on the command line).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.vllm.vllm_servers import Environment, VllmServer, prepare_environment

TIMINGS_KEY = pytest.StashKey[dict[str, float]]()


@dataclass
class VllmFleet:
    env: Environment
    servers: list[VllmServer]

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def restart(self, index: int) -> None:
        server = self.servers[index]
        server.stop()
        server.start()
        server.wait_ready()


def _attached(env: Environment, url: str) -> VllmServer:
    server = VllmServer(env, Path(os.devnull))
    server.port = int(url.rsplit(":", 1)[1])
    return server


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TIMINGS_KEY] = {"session start": time.monotonic()}
    config.addinivalue_line("markers", "destructive: kills a vLLM replica (runs last)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that kill a replica run last, so the others always have two."""
    items.sort(key=lambda item: item.get_closest_marker("destructive") is not None)


@pytest.fixture(scope="session")
def vllm_fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmFleet]:
    timings = request.config.stash[TIMINGS_KEY]
    running = os.environ.get("GPUFLEET_VLLM_URLS")
    if running:  # developers: reuse servers already up (not started, stopped or killed here)
        env = Environment(Path(), Path(), {})
        yield VllmFleet(env, [_attached(env, url) for url in running.split(",")])
        return
    env = prepare_environment()
    timings.update({f"{k} (s)": v for k, v in env.timings_s.items()})
    logs = Path("test-artifacts/vllm")
    logs.mkdir(parents=True, exist_ok=True)
    servers = [VllmServer(env, logs / f"replica-{i}.log", cpu=str(i % 2)) for i in range(2)]
    start = time.monotonic()
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        timings["server startup (s)"] = time.monotonic() - start
        yield VllmFleet(env, servers)
    finally:
        for server in servers:
            server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    timings = terminalreporter.config.stash.get(TIMINGS_KEY, {})
    started = timings.pop("session start", None)
    if started is None:
        return
    parts = [f"{name} {value:.1f}" for name, value in timings.items()]
    parts.append(f"whole tier {time.monotonic() - started:.1f} s")
    terminalreporter.write_line("vllm tier timings: " + ", ".join(parts))
