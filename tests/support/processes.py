"""Start real gpufleet processes on loopback for tests, and always clean them up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

STARTUP_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 15.0
"""Longer than the gateway's default shutdown grace (10 s) for in-flight requests."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post(url: str, body: bytes, timeout_s: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_ok(
    url: str, process: subprocess.Popen[bytes], timeout_s: float, log: IO[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail fast (with its output: its stdout pipe, or
    ``log``) if the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if log is not None:
                log.seek(0)
                output = log.read().decode(errors="replace")
            else:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"process exited with {process.returncode}:\n{output[-3000:]}")
        try:
            if http_get(url, timeout_s=0.5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready within {timeout_s} s")


@dataclass
class Engine:
    port: int
    process: subprocess.Popen[bytes]
    served_name: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metric(self, name: str) -> float:
        """Sum of all samples of ``name`` in the engine's own /metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        _, body = http_get(self.url + "/metrics")
        total = 0.0
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == name:
                    total += sample.value
        return total


@dataclass
class ProcessGroup:
    """Every process a test started; ``close`` terminates them all."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[int, IO[bytes]] = field(default_factory=dict)
    """Each process's stdout+stderr, by pid: a file, never a pipe nobody drains (a chatty
    gateway would block on a full pipe)."""

    def spawn(
        self, args: Sequence[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        process = subprocess.Popen(
            [sys.executable, "-m", "gpufleet", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.processes.append(process)
        self.logs[process.pid] = log
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        """Everything ``process`` has printed so far."""
        log = self.logs[process.pid]
        log.seek(0)
        return log.read().decode(errors="replace")

    def engine(
        self,
        served_name: str = "tiny",
        model: str = "llama-3-8b",
        gpu: str = "h100",
        speed: float = 20.0,
        extra: Sequence[str] = (),
        wait: bool = True,
        port: int | None = None,
    ) -> Engine:
        port = port or free_port()
        process = self.spawn([
            "engine", "--model", model, "--gpu", gpu, "--port", str(port),
            "--served-model-name", served_name, "--speed", str(speed), *extra,
        ])  # fmt: skip
        if wait:
            wait_until_ok(
                f"http://127.0.0.1:{port}/v1/models",
                process,
                STARTUP_TIMEOUT_S,
                self.logs[process.pid],
            )
        return Engine(port, process, served_name)

    def gateway(self, config: dict[str, object], tmp: Path, wait_ready: bool = True) -> str:
        port = free_port()
        path = tmp / f"fleet-{port}.yaml"
        path.write_text(yaml.safe_dump(config))
        process = self.spawn(["serve", "-c", str(path), "--port", str(port)])
        url = f"http://127.0.0.1:{port}"
        wait_until_ok(
            url + ("/ready" if wait_ready else "/health"),
            process,
            STARTUP_TIMEOUT_S,
            self.logs[process.pid],
        )
        return url

    def close(self) -> None:
        """SIGTERM every process, wait for them all, and fail (after killing it) if one did
        not exit within ``EXIT_TIMEOUT_S``: a server must shut down when asked."""
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + EXIT_TIMEOUT_S
        hung = []
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                hung.append(f"{' '.join(map(str, process.args))}:\n{self.output(process)[-2000:]}")
            log = self.logs.pop(process.pid, None)
            if log is not None:
                log.close()
        assert not hung, f"ignored SIGTERM for {EXIT_TIMEOUT_S:g} s: " + "\n".join(hung)


def fleet_config(
    endpoints: Sequence[str],
    model: str = "tiny",
    scorers: Sequence[dict[str, object]] = ({"name": "least-outstanding-scorer"},),
    picker: str = "max-score-picker",
    profile: str | None = None,
    **sections: object,
) -> dict[str, object]:
    """A one-pool fleet.yaml over ``endpoints``; ``profile`` picks a built-in routing profile
    instead of the test profile made of ``scorers`` and ``picker``."""
    config: dict[str, object] = {
        "gateway": {"access_log": "off", "debug_header": True},
        "models": [{"name": model, "aliases": [f"{model}-alias"], "context_length": 4096}],
        "pools": [
            {
                "name": "pool-a",
                "gpu": "h100-sxm",
                "price_usd_per_gpu_hour": 4.0,
                "deployments": [{"model": model, "endpoints": list(endpoints)}],
            }
        ],
        "routing": {
            "profile": "test",
            "profiles": {
                "test": {
                    "filters": [{"name": "healthy-filter"}, {"name": "model-filter"}],
                    "scorers": list(scorers),
                    "picker": {"name": picker},
                }
            },
        },
        "health": {"interval_s": 0.2, "timeout_s": 0.5},
        "timeouts": {"connect_s": 1.0, "first_byte_s": 2.0, "idle_s": 2.0, "total_s": 30.0},
    }
    if profile is not None:
        config["routing"] = {"profile": profile}
    config.update(sections)
    return config


def wait_for(
    predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s} s")
        time.sleep(0.01)
