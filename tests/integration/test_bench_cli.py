"""`gpufleet bench` against a local fleet: two simulated engines behind the gateway."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gpufleet.bench.report import DISTRIBUTION_KEYS, RUN_KEYS, TOP_KEYS
from gpufleet.cli import main
from tests.support.processes import Engine, ProcessGroup, fleet_config, free_port

MAX_TOKENS = 16


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Engine]]]:
    procs = ProcessGroup()
    try:
        engines = [procs.engine(speed=20), procs.engine(speed=20)]
        config = fleet_config([e.url for e in engines])
        yield procs.gateway(config, tmp_path_factory.mktemp("fleet")), engines
    finally:
        procs.close()


def bench(
    *args: str, timeout_s: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpufleet", "bench", *args],
        capture_output=True, text=True, timeout=timeout_s, cwd=cwd,
    )  # fmt: skip


def check_run(run: dict[str, Any], max_tokens: int) -> None:
    assert set(run) == RUN_KEYS
    requests = run["requests"]
    assert requests["sent"] > 0 and requests["failed"] == 0, run["errors"]
    assert requests["completed"] == requests["sent"] - requests["failed"] - requests["cancelled"]
    latency = run["latency_ms"]
    for name in ("ttft", "itl", "tpot", "e2e"):
        d = latency[name]
        assert set(d) == DISTRIBUTION_KEYS
        assert d["min"] <= d["p50"] <= d["p90"] <= d["p99"] <= d["max"], name
    assert latency["ttft"]["p50"] > 0 and latency["ttft"]["min"] > 0
    assert latency["itl"]["mean"] > 0 and latency["itl"]["max"] > 0
    assert latency["tpot"]["p50"] > 0
    assert latency["e2e"]["min"] > latency["ttft"]["min"]
    assert latency["itl"]["count"] > 0
    tokens = run["tokens"]
    assert tokens["usage_reported"]
    assert tokens["output_total"] == requests["completed"] * max_tokens
    assert tokens["output_per_request"]["min"] == tokens["output_per_request"]["max"] == max_tokens
    assert run["throughput"]["requests_per_s"] > 0
    assert run["throughput"]["output_tokens_per_s"] == pytest.approx(
        run["throughput"]["requests_per_s"] * max_tokens
    )
    assert 0 <= run["goodput"]["requests_per_s"] <= run["throughput"]["requests_per_s"]


def test_open_loop_sweep_synthetic_with_json_and_plots(
    fleet: tuple[str, list[Engine]], tmp_path: Path
) -> None:
    url, _ = fleet
    out, plots = tmp_path / "out.json", tmp_path / "plots"
    done = bench(
        "--url", url, "--rate", "15,30", "--duration", "1.5", "--prompt-tokens", "uniform:32,96",
        "--max-tokens", str(MAX_TOKENS), "--slo-ttft-ms", "2000", "--slo-itl-ms", "500",
        "--json", str(out), "--plots", str(plots),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "TTFT" in done.stdout and "sweep" in done.stdout
    doc = json.loads(out.read_text())
    assert set(doc) == TOP_KEYS and doc["schema_version"] == 1
    assert doc["config"]["mode"] == "open-loop" and doc["config"]["rates_per_s"] == [15, 30]
    assert doc["config"]["model"] == "tiny", "discovered from GET /v1/models"
    assert [run["rate_per_s"] for run in doc["runs"]] == [15, 30]
    for run in doc["runs"]:
        check_run(run, MAX_TOKENS)
        assert run["goodput"]["num_good"] == run["requests"]["completed"], "generous SLOs"
        assert run["dispatch_s"] < 1.5
    assert doc["runs"][1]["requests"]["sent"] > doc["runs"][0]["requests"]["sent"]
    for name in ("latency_cdf.png", "throughput.png", "timeline.png"):
        path = plots / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as image:
            image.verify()
            assert image.size[0] > 100 and image.size[1] > 100


def test_closed_loop_multi_turn_shares_prefixes(
    fleet: tuple[str, list[Engine]], tmp_path: Path
) -> None:
    url, engines = fleet
    hits_before = sum(e.metric("vllm:prefix_cache_hits_total") for e in engines)
    out = tmp_path / "out.json"
    done = bench(
        "--url", url, "--model", "tiny", "--workload", "multi-turn", "--concurrency", "4",
        "--num-requests", "40", "--users", "6", "--system-prompts", "2",
        "--system-prompt-tokens", "256", "--prompt-tokens", "24", "--turns", "3",
        "--max-tokens", "8", "--json", str(out), "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["config"]["mode"] == "closed-loop" and doc["config"]["concurrency"] == 4
    (run,) = doc["runs"]
    check_run(run, 8)
    assert run["requests"]["sent"] == 40
    assert run["workload"]["kind"] == "multi-turn" and run["workload"]["num_users"] == 6
    hits = sum(e.metric("vllm:prefix_cache_hits_total") for e in engines) - hits_before
    assert hits >= 256, "turns and users sharing a system prompt hit the prefix cache"


def test_json_to_stdout_leaves_the_table_on_stderr(
    fleet: tuple[str, list[Engine]], tmp_path: Path
) -> None:
    url, _ = fleet
    done = bench(
        "--url", url, "--model", "tiny", "--concurrency", "2", "--num-requests", "6",
        "--max-tokens", "4", "--json", "-", "-q", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # the JSON alone
    assert set(doc) == TOP_KEYS and doc["runs"][0]["requests"]["completed"] == 6
    assert "TTFT" in done.stderr
    assert not (tmp_path / "-").exists()


def test_completions_without_streaming(fleet: tuple[str, list[Engine]]) -> None:
    url, _ = fleet
    done = bench("--url", url, "--endpoint", "completions", "--no-stream", "--concurrency", "2",
                 "--num-requests", "6", "--max-tokens", "5")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "6 sent, 6 completed, 0 failed" in done.stdout


def test_every_request_failing_exits_1_with_the_causes(fleet: tuple[str, list[Engine]]) -> None:
    url, _ = fleet
    done = bench("--url", url, "--model", "nope", "--concurrency", "2", "--num-requests", "4")
    assert done.returncode == 1
    assert done.stderr.strip() == "gpufleet bench: all 4 requests failed (http_404: 4)"


def test_unreachable_server_is_one_line_and_exit_1() -> None:
    done = bench("--url", f"http://127.0.0.1:{free_port()}", "--rate", "5", "--duration", "1")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "cannot list the models" in done.stderr
    done = bench("--url", f"http://127.0.0.1:{free_port()}", "--model", "m", "--rate", "20",
                 "--duration", "0.5")  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("gpufleet bench: all ") and "connection_error" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://h"], "give --rate"),
        (["--url", "http://h", "--rate", "0"], "--rate values must be positive"),
        (["--url", "http://h", "--rate", "1", "--concurrency", "2"], "exclude each other"),
        (["--url", "h:80", "--rate", "1"], "--url"),
        (["--url", "http://h", "--rate", "1", "--max-tokens", "uniform:9"], "--max-tokens"),
        (["--url", "http://h", "--workload", "azure"], "needs --trace"),
        (["--url", "http://h", "--workload", "azure", "--trace", "/nonexistent.csv"],
         "cannot read"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *args]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


def test_help_has_examples_and_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_help:
        main(["bench", "--help"])
    assert exit_help.value.code == 0
    assert "examples:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_usage:
        main(["bench", "--rate", "5"])
    assert exit_usage.value.code == 2, "--url is required"
    assert "--url" in capsys.readouterr().err
