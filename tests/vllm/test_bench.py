"""`gpufleet bench` against real vLLM, directly and through the gateway (issue 10, 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_bench_cli import bench, check_run
from tests.support.processes import ProcessGroup
from tests.vllm.conftest import VllmFleet
from tests.vllm.helpers import start_gateway

MAX_TOKENS = 16


@pytest.mark.parametrize("through_gateway", [False, True])
def test_bench_measures_real_vllm(
    vllm_fleet: VllmFleet, procs: ProcessGroup, tmp_path: Path, through_gateway: bool
) -> None:
    url = start_gateway(procs, vllm_fleet.urls, tmp_path) if through_gateway else vllm_fleet.urls[0]
    out = tmp_path / "bench.json"
    done = bench(
        "--url", url, "--model", "tiny", "--concurrency", "4", "--num-requests", "24",
        "--prompt-tokens", "32", "--max-tokens", str(MAX_TOKENS), "--ignore-eos",
        "--json", str(out), "-q",
        timeout_s=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["config"]["model"] == "tiny"
    (run,) = doc["runs"]
    check_run(run, MAX_TOKENS)
    assert run["requests"]["sent"] == 24
    assert run["throughput"]["output_tokens_per_s"] > 0
