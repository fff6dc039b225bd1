"""The mypyc build (setup.py, ``GPUFLEET_MYPYC=1``) simulates exactly what pure Python does.

Builds the compiled tree into a temporary directory (about a minute), then runs the
same `gpufleet sim` under both builds and compares their JSON reports whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLEET = """
models: [{name: llama-3-8b, context_length: 8192}]
pools:
  - {name: h100, gpu: h100-sxm, price_usd_per_gpu_hour: 6.88,
     deployments: [{model: llama-3-8b, replicas: 3}]}
  - {name: l40s, gpu: l40s, capacity: spot, price_usd_per_gpu_hour: 1.1,
     deployments: [{model: llama-3-8b, replicas: 2}]}
routing: {profile: %s}
"""


@pytest.fixture(scope="module")
def compiled_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mypyc")
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build", "--build-base", str(root / "work"),
         "--build-lib", str(root / "lib")],
        cwd=ROOT, env={**os.environ, "GPUFLEET_MYPYC": "1"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    return root / "lib"


def simulate(
    tmp_path: Path, profile: str, workload: str, pythonpath: Path | None
) -> dict[str, Any]:
    config = tmp_path / f"fleet-{profile}.yaml"
    config.write_text(FLEET % profile)
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    run = subprocess.run(
        [sys.executable, "-m", "gpufleet", "sim", "-c", str(config), "--workload", workload,
         "--duration", "120", "--seed", "3", "--spot-rate", "20", "--json", "-", "-q"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    report: dict[str, Any] = json.loads(run.stdout)
    return report


def test_the_compiled_build_imports_extension_modules(compiled_tree: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c",
         "import gpufleet.engine.kv_cache as k, gpufleet.sim.simulator as s; "
         "print(k.__file__); print(s.__file__)"],
        env={**os.environ, "PYTHONPATH": str(compiled_tree)},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    files = probe.stdout.split()
    assert all(f.startswith(str(compiled_tree)) and f.endswith(".so") for f in files), files


@pytest.mark.parametrize(
    ("profile", "workload"), [("least-load", "chat"), ("default", "multi-turn")]
)
def test_compiled_and_pure_simulations_agree_exactly(
    compiled_tree: Path, tmp_path: Path, profile: str, workload: str
) -> None:
    """Spot interruptions (20 per replica-hour), cold starts, routing and the engines."""
    pure = simulate(tmp_path, profile, workload, None)
    compiled = simulate(tmp_path, profile, workload, compiled_tree)
    assert pure["requests"] > 1000
    assert compiled == pure  # the report holds no wall-clock figure: all of it must match
