"""The Grafana dashboard's content, and ``gpufleet render`` writing files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gpufleet.cli import main
from gpufleet.deploy.dashboard import dashboard
from tests.unit.deploy.fleets import FLEETS, spec

REQUIRED_METRICS = (
    "gpufleet_generation_tokens_total",
    "gpufleet_prompt_tokens_total",
    "gpufleet_time_to_first_token_seconds_bucket",
    "gpufleet_inter_token_latency_seconds_bucket",
    "gpufleet_e2e_request_latency_seconds_bucket",
    "gpufleet_requests_total",
    "gpufleet_queue_depth",
    "gpufleet_requests_in_flight",
    "vllm:kv_cache_usage_perc",
    "vllm:num_requests_waiting",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
)


def test_dashboard_covers_throughput_latency_cache_queues_outcomes_cost_and_gpus() -> None:
    board = dashboard(spec("example"))
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    for metric in REQUIRED_METRICS:
        assert metric in exprs, metric
    titles = " ".join(p["title"] for p in board["panels"]).lower()
    for word in (
        "per gpu",
        "time to first token",
        "inter-token",
        "kv-cache",
        "queue",
        "outcome",
        "cost",
    ):
        assert word in titles, word
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in exprs
    assert "* 4" in exprs and "* 27.52" in exprs, "GPUs and price per replica of the TP-4 pool"
    ids = [p["id"] for p in board["panels"]]
    assert ids == sorted(set(ids))
    assert {v["name"] for v in board["templating"]["list"]} == {
        "datasource",
        "model",
        "pool",
        "gpu",
    }


def test_render_command_writes_every_target(tmp_path: Path) -> None:
    fleet = str(FLEETS["example"])
    for target in ("k8s", "helm", "terraform", "grafana"):
        assert main(["render", "-c", fleet, "--target", target, "-o", str(tmp_path / target)]) == 0
    assert (tmp_path / "k8s" / "gateway.yaml").is_file()
    assert (tmp_path / "helm" / "templates" / "engines.yaml").is_file()
    assert (tmp_path / "terraform" / "node_groups.tf").is_file()
    json.loads((tmp_path / "grafana" / "gpufleet-dashboard.json").read_text())


def test_render_is_identical_across_processes(tmp_path: Path) -> None:
    """No hash-seed, clock or host dependence: two fresh processes write the same bytes."""
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        subprocess.run(
            [sys.executable, "-m", "gpufleet", "render", "-c", str(FLEETS["multinode"]),
             "--target", "k8s", "-o", str(out)],
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]


def test_render_reports_configuration_errors(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text("models: [{name: m}]\npools: [{name: p, gpu: h100, gpus_per_replica: 16,"
                   " deployments: [{model: m}]}]\n")  # fmt: skip
    assert main(["render", "-c", str(bad), "--target", "k8s", "-o", str(tmp_path / "o")]) == 2
