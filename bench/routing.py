"""bench-routing: round-robin vs least-load vs gpufleet's default profile on one simulated fleet.

Starts 8 simulated replicas of Llama-3-8B on H100 (engine model at ``--speed`` × real
time, vLLM's ``--stream-interval`` to keep the SSE traffic affordable on 2 cores; the
replicas are served by ``--engine-processes`` processes, one per core, each replica still
its own engine, KV cache, port and /metrics), then
for each routing profile — on fresh engines, so prefix caches start cold — a gateway
and ``gpufleet bench`` with a multi-turn workload: many users in conversations over a
few long shared system prompts (``--workload``: ``long-context``, the default, or
``short-context``, the one of runs before 2026-11-25), Poisson arrivals at 50%, 80% and
100% of the fleet's capacity (calibrated first: the round-robin fleet's closed-loop
throughput), in ``--rounds`` rounds (default 3) where the profiles take turns going
first; each figure is the median over the rounds, and the targets compare profiles
within each round (the machine is noisy: a paired ratio per round, then their median).
Latencies are reported in model time (wall × speed). Cache hit rates, preemptions and
the load spread come from the engines' own /metrics. Each round ends with an overload run
(default profile, 150% of capacity): a small interactive (high-priority) stream under a
batch (low-priority) flood, against the same stream's unloaded TTFT just before.

    .venv/bin/python bench/routing.py [--duration 12] [--speed 10]
    .venv/bin/python bench/routing.py --loads '' --capacity 485   # the overload runs only
    .venv/bin/python bench/routing.py --workload short-context    # the earlier workload

Writes bench/results/routing.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "routing.json"
GPUFLEET = [sys.executable, "-m", "gpufleet"]
MODEL = "llama-3-8b"
PROFILES = ("round-robin", "least-load", "default")
START_ATTEMPTS = 3


@dataclass(frozen=True)
class Workload:
    """A bench workload: ``gpufleet bench``'s arguments and the engines' memory it assumes."""

    args: tuple[str, ...]
    max_model_len: int
    gpu_memory_utilization: float
    """Low on purpose: a replica's KV cache holds only some of the users' histories, so
    where a request goes decides whether its history is still cached."""


_USERS = ("--workload", "multi-turn", "--users", "157", "--system-prompts", "8")
# 157 users: co-prime with the 8 replicas. The workload hands arrival i to user i mod N;
# with N a multiple of 8, round-robin would pin every user to one replica by accident.
_LONG_CONTEXT = (
    *_USERS, "--system-prompt-tokens", "1024", "--turns", "15", "--prompt-tokens", "128",
    "--max-tokens", "128", "--max-prompt-tokens", "5000",
)  # fmt: skip
_SHORT_CONTEXT = (
    *_USERS, "--system-prompt-tokens", "512", "--turns", "10", "--prompt-tokens", "128",
    "--max-tokens", "128", "--max-prompt-tokens", "3500",
)  # fmt: skip
WORKLOADS = {
    # 1,024-token system prompts, conversations of up to 15 turns / 5,000 tokens on
    # 8k-context replicas (the default from 2026-11-25)
    "long-context": Workload(_LONG_CONTEXT, max_model_len=8192, gpu_memory_utilization=0.4),
    # the workload of every run before it: 512-token system prompts, up to 10 turns /
    # 3,500 tokens on 4k-context replicas
    "short-context": Workload(_SHORT_CONTEXT, max_model_len=4096, gpu_memory_utilization=0.3),
}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StartFailed(Exception):
    """A process of the fleet exited while starting; the message has its last output."""

    def __init__(self, message: str, port_taken: bool):
        super().__init__(message)
        self.port_taken = port_taken


def wait_ok(
    url: str, process: subprocess.Popen[bytes], log: IO[bytes], timeout_s: float = 30.0
) -> None:
    """Wait for ``url`` to answer 200; `StartFailed` with ``log``'s tail if ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise StartFailed(
                f"{process.args!s} exited with {process.returncode}: {output[-2000:].strip()}",
                port_taken="address already in use" in output,
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} not ready in {timeout_s} s")


def engine_counters(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = {
        "vllm:prefix_cache_hits_total": "hits",
        "vllm:prefix_cache_queries_total": "queries",
        "vllm:num_preemptions_total": "preemptions",
        "vllm:request_success_total": "requests",
        "vllm:generation_tokens_total": "generated",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                out[wanted[sample.name]] += sample.value
    return out


class Fleet:
    """Engines + one gateway, all children of this process, always cleaned up."""

    def __init__(self, args: argparse.Namespace, profile: str, workdir: Path):
        self.processes: list[subprocess.Popen[bytes]] = []
        self.engine_urls: list[str] = []
        self.logs: dict[int, IO[bytes]] = {}
        for attempt in range(START_ATTEMPTS):
            try:
                self._start(args, profile, workdir)
                return
            except StartFailed as exc:
                self.close()
                # a port found free can be taken before the engine binds it (by one of the
                # thousands of outgoing connections of a run): new ports, a new try
                if not exc.port_taken or attempt == START_ATTEMPTS - 1:
                    raise SystemExit(str(exc)) from None
                print(f"retrying the fleet's start: {exc}", file=sys.stderr, flush=True)
            except BaseException:
                self.close()  # a failed start must not leave engines behind
                raise

    def _start(self, args: argparse.Namespace, profile: str, workdir: Path) -> None:
        ports = [free_port() for _ in range(args.replicas)]
        hosts = min(args.engine_processes, args.replicas)
        for group in (ports[i::hosts] for i in range(hosts)):
            process = self._spawn([
                "engine", "--model", MODEL, "--gpu", "h100",
                "--port", ",".join(str(port) for port in group),
                "--served-model-name", MODEL, "--speed", str(args.speed),
                "--stream-interval", str(args.stream_interval),
                "--gpu-memory-utilization", str(args.gpu_memory_utilization),
                "--max-model-len", str(args.workload.max_model_len),
            ])  # fmt: skip
            for port in group:
                wait_ok(f"http://127.0.0.1:{port}/health", process, self.logs[process.pid])
        self.engine_urls = [f"http://127.0.0.1:{port}" for port in ports]
        port = free_port()
        config = {
            "gateway": {"access_log": "off"},
            "models": [{"name": MODEL, "context_length": args.workload.max_model_len}],
            "pools": [{"name": "h100", "gpu": "h100-sxm", "price_usd_per_gpu_hour": 6.88,
                       "deployments": [{"model": MODEL, "endpoints": self.engine_urls}]}],
            "routing": {"profile": profile},
            "admission": {"max_wait_s": 600},
            # the gateway's clock-driven knobs scaled with the engines' time: by default
            # 100 ms of model time between scrapes, as in production at real time
            "scrape": {"interval_s": round(args.scrape_interval_ms / 1000 / args.speed, 4)},
        }  # fmt: skip
        path = workdir / f"fleet-{profile}.yaml"
        path.write_text(yaml.safe_dump(config))
        gateway = self._spawn(["serve", "-c", str(path), "--port", str(port)])
        self.url = f"http://127.0.0.1:{port}"
        wait_ok(self.url + "/ready", gateway, self.logs[gateway.pid])

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        # stderr to a file, read only if the process fails to start (a pipe nobody drains
        # would block a chatty process)
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        process = subprocess.Popen(
            [*GPUFLEET, *args], stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        self.logs[process.pid] = log
        return process

    def counters(self) -> list[dict[str, float]]:
        return [engine_counters(url) for url in self.engine_urls]

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            self.logs.pop(process.pid).close()
        self.processes = []


def bench_command(
    url: str, workload: Workload, extra: list[str], out: Path, duration: float, seed: int
) -> list[str]:
    """``gpufleet bench`` with ``workload`` for ``duration`` wall seconds, figures to ``out``."""
    return [
        *GPUFLEET, "bench", "--url", url, "--model", MODEL, "-q", *workload.args,
        "--duration", str(duration), "--seed", str(seed), "--json", str(out), *extra,
    ]  # fmt: skip


def run_bench(
    url: str, workload: Workload, extra: list[str], out: Path, duration: float, seed: int
) -> dict[str, Any]:
    command = bench_command(url, workload, extra, out, duration, seed)
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(out.read_text())["runs"][0]


def summarise(
    run: dict[str, Any],
    before: list[dict[str, float]],
    after: list[dict[str, float]],
    speed: float,
    tokens_per_chunk: int,
) -> dict[str, Any]:
    """One run's row, in model time. ITL is per token: each streamed chunk after the
    first carries ``tokens_per_chunk`` tokens (the engines' --stream-interval)."""
    delta = [{k: a[k] - b[k] for k in a} for a, b in zip(after, before, strict=True)]
    hits = sum(d["hits"] for d in delta)
    queries = sum(d["queries"] for d in delta)
    served = [d["requests"] for d in delta]
    mean = sum(served) / len(served) if served else 0.0
    lat = run["latency_ms"]

    def model_ms(kind: str, q: str) -> float | None:
        value = lat[kind][q]
        return None if value is None else value * speed

    return {
        "offered_per_s_model": run["rate_per_s"] / speed if run.get("rate_per_s") else None,
        "completed": run["requests"]["completed"],
        "failed": run["requests"]["failed"],
        "errors": run["errors"],
        "throughput_rps_model": run["throughput"]["requests_per_s"] / speed,
        "output_tokens_per_s_model": run["throughput"]["output_tokens_per_s"] / speed,
        "ttft_ms": {q: model_ms("ttft", q) for q in ("p50", "p90", "p99")},
        "itl_ms": {
            q: (v / tokens_per_chunk if (v := model_ms("itl", q)) is not None else None)
            for q in ("p50", "p99")
        },
        "cache_hit_rate": hits / queries if queries else 0.0,
        "preemptions": sum(d["preemptions"] for d in delta),
        "requests_per_replica": served,
        "max_over_mean_load": max(served) / mean if mean else 0.0,
    }


def calibrate(args: argparse.Namespace, workdir: Path) -> float:
    """Fleet capacity (wall req/s): round-robin, closed loop, deep concurrency."""
    fleet = Fleet(args, "round-robin", workdir)
    try:
        run = run_bench(
            fleet.url, args.workload,
            ["--concurrency", str(args.replicas * args.calibration_depth)],
            workdir / "calibrate.json", args.duration, seed=99,
        )  # fmt: skip
    finally:
        fleet.close()
    return float(run["throughput"]["requests_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=12.0, help="wall seconds per run")
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument(
        "--engine-processes", type=int, default=2,
        help="processes the replicas are spread over (one per core: fewer context switches)",
    )  # fmt: skip
    parser.add_argument(
        "--loads",
        default="0.5,0.8,1.0",
        help="fractions of capacity; '' for the overload runs only",
    )
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="repeats of every profile at every load, and of the overload run; figures are "
        "medians over the rounds",
    )  # fmt: skip
    parser.add_argument("--stream-interval", type=int, default=16)
    parser.add_argument(
        "--workload", choices=sorted(WORKLOADS), default="long-context",
        help="the conversations' shape (see WORKLOADS)",
    )  # fmt: skip
    parser.add_argument(
        "--gpu-memory-utilization", type=float, default=None, help="default: the workload's"
    )
    parser.add_argument(
        "--scrape-interval-ms", type=float, default=100.0,
        help="the gateway's scrape interval, in model time (the product default: 100)",
    )  # fmt: skip
    parser.add_argument("--calibration-depth", type=int, default=12)
    parser.add_argument("--capacity", type=float, default=None, help="skip calibration (wall rps)")
    args = parser.parse_args()
    if args.replicas < 1 or args.engine_processes < 1 or args.rounds < 1:
        parser.error("--replicas, --engine-processes and --rounds must be at least 1")
    args.workload = WORKLOADS[args.workload]
    if args.gpu_memory_utilization is None:
        args.gpu_memory_utilization = args.workload.gpu_memory_utilization
    loads = [float(x) for x in args.loads.split(",") if x.strip()]  # "": the overload runs only
    report: dict[str, Any] = {
        "benchmark": "routing", "python": platform.python_version(), "nproc": os.cpu_count(),
        "settings": {**vars(args), "workload": list(args.workload.args), "model": MODEL,
                     "gpu": "h100-sxm"},
        "results": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gpufleet-bench-routing-") as tmp:
        workdir = Path(tmp)
        capacity = args.capacity or calibrate(args, workdir)
        report["capacity_rps_wall"] = capacity
        report["capacity_rps_model"] = capacity / args.speed
        print(f"fleet capacity: {capacity / args.speed:.1f} req/s (model time)", flush=True)
        rounds: list[dict[str, dict[str, Any]]] = []
        overloads: list[dict[str, Any]] = []
        for number in range(args.rounds):
            if loads:
                rounds.append(run_round(args, workdir, capacity, loads, number))
            overloads.append(overload(args, workdir, capacity, number))
        report["rounds"] = rounds
        report["results"] = median_results(rounds)
        report["targets"] = round_targets(rounds)
        report["priority"] = overload_targets(overloads)
    if len(rounds) > 1:
        print(f"medians of {len(rounds)} rounds:")
        for profile, rows in report["results"].items():
            for load, row in rows.items():
                print_row(profile, float(load), row)
    print_targets(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"raw figures: {RESULTS}")


def run_round(
    args: argparse.Namespace, workdir: Path, capacity: float, loads: list[float], number: int
) -> dict[str, dict[str, Any]]:
    """Every profile at every load, each profile on fresh engines (cold prefix caches).
    The profiles take turns going first, so a noisy spell of the machine does not always
    fall on the same one; the targets compare profiles within a round."""
    results: dict[str, dict[str, Any]] = {}
    order = PROFILES[number % len(PROFILES) :] + PROFILES[: number % len(PROFILES)]
    for profile in order:
        fleet = Fleet(args, profile, workdir)
        try:
            for load in loads:
                before = fleet.counters()
                out = workdir / f"{profile}-{load}.json"
                rate = ["--rate", f"{capacity * load:.2f}"]
                run = run_bench(fleet.url, args.workload, rate, out, args.duration, seed=1 + number)
                after = fleet.counters()
                row = summarise(run, before, after, args.speed, args.stream_interval)
                results.setdefault(profile, {})[str(load)] = row
                print_row(profile, load, row, f"round {number + 1}")
        finally:
            fleet.close()
    return {profile: results[profile] for profile in PROFILES}


def median_results(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per profile and load, the median of each figure over the rounds (``failed`` and
    ``completed``: the totals; the per-replica counts: the first round's)."""
    if not rounds:
        return {}
    return {
        profile: {
            load: _median_row([r[profile][load] for r in rounds]) for load in rounds[0][profile]
        }
        for profile in rounds[0]
    }


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, first in rows[0].items():
        values = [row[key] for row in rows]
        if key in ("failed", "completed"):
            out[key] = sum(values)
        elif key == "errors":  # counts by kind: the totals
            out[key] = dict(sum((Counter(v) for v in values), Counter()))
        elif isinstance(first, dict):
            out[key] = _median_row(values)
        elif isinstance(first, (int, float)) and all(v is not None for v in values):
            out[key] = statistics.median(values)
        else:
            out[key] = first
    return out


def overload(
    args: argparse.Namespace, workdir: Path, capacity: float, number: int
) -> dict[str, Any]:
    """Interactive stream (10% of capacity) alone, then under a batch flood (150% in all),
    on fresh engines: one paired measurement per round, like the profiles' targets.
    The batch flood asks for whole responses, as offline jobs do: it loads the engines
    the same, without 10 SSE events per request through a 2-core machine."""
    fleet = Fleet(args, "default", workdir)
    interactive = ["--header", "x-request-class: interactive"]
    seed = 5 + 3 * number
    try:
        rate = ["--rate", f"{capacity * 0.1:.2f}"]
        alone = run_bench(fleet.url, args.workload, [*interactive, *rate],
                          workdir / "alone.json", args.duration, seed=seed)  # fmt: skip
        flood_out = workdir / "flood.json"
        batch_flood = [
            "--header", "x-request-class: batch", "--header", "x-request-deadline-ms: 20000",
            "--no-stream", "--rate", f"{capacity * 1.4:.2f}",
        ]  # fmt: skip
        flood = subprocess.Popen(
            bench_command(fleet.url, args.workload, batch_flood, flood_out, args.duration,
                          seed=seed + 1),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        loaded = run_bench(fleet.url, args.workload, [*interactive, *rate],
                           workdir / "loaded.json", args.duration, seed=seed + 2)  # fmt: skip
        flood.wait(timeout=args.duration * 10)
        batch = json.loads(flood_out.read_text())["runs"][0]
    finally:
        fleet.close()
    speed = args.speed
    result = {
        "interactive_alone_ttft_p90_ms": alone["latency_ms"]["ttft"]["p90"] * speed,
        "interactive_loaded_ttft_p90_ms": loaded["latency_ms"]["ttft"]["p90"] * speed,
        "interactive_loaded_failed": loaded["requests"]["failed"],
        "batch_sent": batch["requests"]["sent"],
        "batch_completed": batch["requests"]["completed"],
        "batch_errors": batch["errors"],
        "batch_ttft_p90_ms": (batch["latency_ms"]["ttft"]["p90"] or 0) * speed,
    }
    result["ratio"] = (
        result["interactive_loaded_ttft_p90_ms"] / result["interactive_alone_ttft_p90_ms"]
    )
    print(
        f"round {number + 1} overload: interactive TTFT p90 "
        f"{result['interactive_alone_ttft_p90_ms']:.0f} ms "
        f"alone -> {result['interactive_loaded_ttft_p90_ms']:.0f} ms under a batch flood; "
        f"batch: {result['batch_completed']}/{result['batch_sent']} completed, "
        f"errors {result['batch_errors']}, TTFT p90 {result['batch_ttft_p90_ms']:.0f} ms",
        flush=True,
    )
    return result


def overload_targets(overloads: list[dict[str, Any]]) -> dict[str, Any]:
    """The overload target per round (interactive TTFT p90 under the flood / alone), then
    the median over the rounds."""
    ratios = [run["ratio"] for run in overloads]
    return {"rounds": overloads, "ratio": {"rounds": ratios, "median": statistics.median(ratios)}}


def print_row(profile: str, load: float, row: dict[str, Any], tag: str = "") -> None:
    t, i = row["ttft_ms"], row["itl_ms"]
    print(
        f"{tag + ' ' if tag else ''}{profile:<12} {load:>4.0%}  "
        f"TTFT p50/p90/p99 {t['p50'] or 0:7.0f} {t['p90'] or 0:7.0f} "
        f"{t['p99'] or 0:7.0f} ms  ITL p50/p99 {i['p50'] or 0:5.1f} {i['p99'] or 0:6.1f} ms  "
        f"{row['throughput_rps_model']:6.1f} req/s  hit {row['cache_hit_rate']:5.1%}  "
        f"preempt {row['preemptions']:5.0f}  max/mean {row['max_over_mean_load']:.2f}  "
        f"failed {row['failed']}",
        flush=True,
    )


def round_targets(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The 80% and 100% targets, each compared within a round, then over the rounds."""
    if not rounds or "0.8" not in rounds[0]["default"]:
        return {}
    at80 = [(r["default"]["0.8"], r["round-robin"]["0.8"]) for r in rounds]
    ttft = [(d["ttft_ms"]["p90"] or 0) / (rr["ttft_ms"]["p90"] or 1) for d, rr in at80]
    hits = [d["cache_hit_rate"] / rr["cache_hit_rate"] if rr["cache_hit_rate"] else 0.0
            for d, rr in at80]  # fmt: skip
    spread = [d["max_over_mean_load"] for d, _ in at80]
    targets: dict[str, Any] = {
        "ttft_p90_ratio_at_80": {"rounds": ttft, "median": statistics.median(ttft)},
        "cache_hit_ratio_at_80": {"rounds": hits, "median": statistics.median(hits)},
        "max_over_mean_load_at_80": {"rounds": spread, "worst": max(spread)},
    }
    if "1.0" in rounds[0]["default"]:
        targets["preemptions_at_100"] = [
            (r["default"]["1.0"]["preemptions"], r["round-robin"]["1.0"]["preemptions"])
            for r in rounds
        ]
    return targets


def print_targets(report: dict[str, Any]) -> None:
    priority = report.get("priority")
    if priority:
        ratio = priority["ratio"]
        print(f"overload, per round: interactive TTFT p90 ×{_listed(ratio['rounds'])} of its "
              f"unloaded value, median ×{ratio['median']:.2f} (target ≤ 2)")  # fmt: skip
    targets = report.get("targets") or {}
    if not targets:
        return
    ttft, hits = targets["ttft_p90_ratio_at_80"], targets["cache_hit_ratio_at_80"]
    print(f"at 80%, per round: default/round-robin TTFT p90 {_listed(ttft['rounds'])}, median "
          f"{ttft['median']:.2f} (target ≤ 0.5); cache hit rate ×{_listed(hits['rounds'])}, "
          f"median ×{hits['median']:.2f} (target ≥ 2); max/mean load "
          f"{_listed(targets['max_over_mean_load_at_80']['rounds'])} (target ≤ 1.3)")  # fmt: skip
    pairs = targets.get("preemptions_at_100", [])
    if pairs:
        listed = ", ".join(f"{d:.0f} vs {rr:.0f}" for d, rr in pairs)
        print(f"at 100%, per round: preemptions default vs round-robin {listed}")


def _listed(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
