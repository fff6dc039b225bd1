"""make bench-load: thousands of concurrent streaming clients through one gateway process.

A fleet of simulated engines behind one gateway; `gpufleet bench` keeps
``--clients`` streaming requests in flight (closed loop) for ``--duration``
seconds. Meanwhile this script samples the gateway process's RSS and open file
descriptors every second, and a probe measures the latency the gateway adds:
the same small streaming request (interactive class: ahead of the queued
load), one at a time, alternately through the gateway and straight to one
engine (added latency = the difference of their TTFT percentiles, under the
same load). The load itself runs in the standard class, so when the engines are
saturated it waits in the gateway's admission queue: its TTFT includes that wait.
After the load, no client-side socket may remain open in the gateway (no leak;
idle upstream connections stay pooled by design).

Prints a table; raw figures go to bench/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402
from tests.support.processes import ProcessGroup, fleet_config  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "load.json"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def client_sockets(pid: int, port: int) -> int:
    """Open TCP sockets of ``pid`` whose local port is ``port`` (connections from clients)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[9] in inodes and fields[3] != "0A":  # not LISTEN
                count += 1
    return count


def probe_ttft(url: str) -> float | None:
    """TTFT of one small streaming request; the class header is ignored by engines and, at
    the gateway, puts the probe in the interactive band (ahead of the queued load)."""
    api = openai.OpenAI(
        base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30,
        default_headers={"x-request-class": "interactive"},
    )  # fmt: skip
    started = time.monotonic()
    try:
        stream = api.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "probe"}], max_tokens=4,
            stream=True,
        )  # fmt: skip
        first = None
        for _ in stream:
            if first is None:
                first = time.monotonic() - started
        return first
    except openai.APIError:
        return None
    finally:
        api.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000, help="streams kept in flight")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--engines", type=int, default=4, help="simulated engines")
    parser.add_argument("--speed", type=float, default=20.0, help="engine time scale")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per response")
    args = parser.parse_args()

    procs = ProcessGroup()
    samples: list[dict[str, float]] = []
    probes: dict[str, list[float]] = {"gateway": [], "direct": []}
    try:
        engines = [
            procs.engine(speed=args.speed, extra=["--max-num-seqs", "4096"])
            for _ in range(args.engines)
        ]
        with tempfile.TemporaryDirectory() as tmp:
            queue = {"max_queue_len": max(4096, args.clients * 2)}
            config = fleet_config(
                [e.url for e in engines], profile="default", gateway={"access_log": "off"},
                admission=queue, health={"interval_s": 2.0, "timeout_s": 5.0},
                # two cores run the engines, the gateway and 5,000 clients: generous timeouts
                timeouts={"connect_s": 5.0, "first_byte_s": 60.0, "idle_s": 60.0, "total_s": 600},
            )  # fmt: skip
            url = procs.gateway(config, Path(tmp))
            gateway_pid = procs.processes[-1].pid
            time.sleep(0.5)
            idle_fds = open_fds(gateway_pid)
            idle_rss = rss_mib(gateway_pid)
            out = Path(tmp) / "bench.json"
            done = threading.Event()

            def sample() -> None:
                start = time.monotonic()
                while not done.is_set():
                    samples.append({
                        "t_s": round(time.monotonic() - start, 1),
                        "rss_mib": round(rss_mib(gateway_pid), 1),
                        "open_fds": open_fds(gateway_pid),
                    })  # fmt: skip
                    done.wait(1.0)

            def probe() -> None:
                time.sleep(3.0)  # let the clients connect first
                while not done.is_set():
                    for name, target in (("gateway", url), ("direct", engines[0].url)):
                        ttft = probe_ttft(target)
                        if ttft is not None:
                            probes[name].append(ttft)
                    done.wait(0.2)

            threads = [threading.Thread(target=sample), threading.Thread(target=probe)]
            for thread in threads:
                thread.start()
            print(f"… {args.clients} streaming clients for {args.duration:.0f} s", file=sys.stderr)
            run = subprocess.run(
                [sys.executable, "-m", "gpufleet", "bench", "--url", url, "--model", "tiny",
                 "--concurrency", str(args.clients), "--duration", str(args.duration),
                 "--prompt-tokens", "32", "--max-tokens", str(args.max_tokens),
                 "--max-connections", str(args.clients + 100), "--json", str(out), "-q"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            done.set()
            for thread in threads:
                thread.join()
            if run.returncode != 0:
                raise SystemExit(f"gpufleet bench failed: {run.stderr[-2000:]}")
            result = json.loads(out.read_text())["runs"][0]
            time.sleep(2.0)  # idle keep-alive connections close
            after_fds = open_fds(gateway_pid)
            after_clients = client_sockets(gateway_pid, int(url.rsplit(":", 1)[1]))
    finally:
        procs.close()

    requests = result["requests"]
    peak_rss = max(s["rss_mib"] for s in samples)
    peak_fds = max(s["open_fds"] for s in samples)
    gateway_p50, gateway_p99 = (
        percentile(probes["gateway"], 0.5),
        percentile(probes["gateway"], 0.99),
    )
    direct_p50, direct_p99 = percentile(probes["direct"], 0.5), percentile(probes["direct"], 0.99)
    report: dict[str, Any] = {
        "args": vars(args),
        "requests": requests,
        "errors": result["errors"],
        "throughput": result["throughput"],
        "ttft_ms": result["latency_ms"]["ttft"],
        "gateway": {
            "idle_rss_mib": round(idle_rss, 1),
            "peak_rss_mib": peak_rss,
            "idle_open_fds": idle_fds,
            "peak_open_fds": peak_fds,
            "open_fds_after": after_fds,
            "client_sockets_after": after_clients,
        },
        "probe_ttft_ms": {
            "gateway_p50": round(gateway_p50 * 1000, 2),
            "gateway_p99": round(gateway_p99 * 1000, 2),
            "direct_p50": round(direct_p50 * 1000, 2),
            "direct_p99": round(direct_p99 * 1000, 2),
            "added_p50": round((gateway_p50 - direct_p50) * 1000, 2),
            "added_p99": round((gateway_p99 - direct_p99) * 1000, 2),
            "samples": len(probes["gateway"]),
        },
        "samples": samples,
    }
    # the gateway keeps idle upstream connections pooled (up to 512 per engine): a leak is a
    # client-side socket still open after every client has gone
    leak = after_clients > 0
    print(f"clients {args.clients}, {args.duration:.0f} s, {args.engines} engines at {args.speed}x")
    print(f"requests sent {requests['sent']}, completed {requests['completed']}, "
          f"failed {requests['failed']} ({result['errors'] or 'no errors'})")  # fmt: skip
    print(f"throughput {result['throughput']['requests_per_s']:.0f} req/s, "
          f"{result['throughput']['output_tokens_per_s']:.0f} tokens/s")  # fmt: skip
    print(f"gateway RSS idle {idle_rss:.0f} MiB, peak {peak_rss:.0f} MiB; "
          f"open fds idle {idle_fds}, peak {peak_fds}, after {after_fds}; "
          f"client sockets left open {after_clients} "
          f"({'LEAK' if leak else 'no leak'})")  # fmt: skip
    probe = report["probe_ttft_ms"]
    print(f"probe TTFT ms (n={probe['samples']}): gateway p50 {probe['gateway_p50']} "
          f"p99 {probe['gateway_p99']}; direct p50 {probe['direct_p50']} p99 "
          f"{probe['direct_p99']}; added p50 {probe['added_p50']} "
          f"p99 {probe['added_p99']}")  # fmt: skip
    met = requests["failed"] == 0 and not leak
    print(f"target (no errors, no fd leak, bounded RSS): {'MET' if met else 'MISSED'}")
    report["target_met"] = met
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"raw figures: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
