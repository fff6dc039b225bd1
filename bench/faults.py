"""make bench-faults: the local fleet under streaming load while faults hit it.

Each scenario starts a fresh fleet (3 simulated engines behind one gateway),
runs closed-loop streaming chat load with the official `openai` client, injects
one fault, and classifies every request the clients sent:

- ok: a finish reason, one response id, usage with all requested tokens;
- truncated: the stream ended without a finish reason or short of its tokens;
- failed: an error (by cause);
- refused after shutdown: only in the gateway-SIGTERM scenario, requests sent after
  the gateway stopped accepting (connection refused: nothing was accepted, nothing lost).

Target: zero failed or truncated requests in every scenario except the one where no
replica remains. Prints a table; raw figures go to bench/results/faults.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402
from tests.support.processes import Engine, ProcessGroup, fleet_config  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "faults.json"
MAX_TOKENS = 64


@dataclass
class Tally:
    sent: int = 0
    ok: int = 0
    truncated: int = 0
    refused_after_shutdown: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)


@dataclass
class Scenario:
    name: str
    engine_flags: list[list[str]]
    inject: Callable[[ProcessGroup, list[Engine], Any], None] | None = None
    inject_at_s: float = 1.5
    exempt: bool = False
    """No replica remains: failures are expected and not held against the target."""


def kill_engine(index: int) -> Callable[[ProcessGroup, list[Engine], Any], None]:
    def inject(procs: ProcessGroup, engines: list[Engine], gateway: Any) -> None:
        os.killpg(engines[index].process.pid, signal.SIGKILL)

    return inject


def kill_all(procs: ProcessGroup, engines: list[Engine], gateway: Any) -> None:
    for engine in engines:
        os.killpg(engine.process.pid, signal.SIGKILL)


def sigterm_gateway(procs: ProcessGroup, engines: list[Engine], gateway: Any) -> None:
    os.killpg(gateway.pid, signal.SIGTERM)


SCENARIOS = [
    Scenario("baseline (no fault)", [[], [], []]),
    Scenario("replica killed mid-stream", [[], [], []], kill_engine(0)),
    Scenario("replica hangs before first byte", [["--hang"], [], []]),
    Scenario("replica answers 500", [["--fail-fraction", "1"], [], []]),
    Scenario("slow replica (10x slower)", [["--speed", "0.2"], [], []]),
    Scenario("network reset mid-stream", [["--reset-after-tokens", "9"], [], []]),
    Scenario("gateway SIGTERM under load", [[], [], []], sigterm_gateway),
    Scenario("every replica killed", [[], [], []], kill_all, exempt=True),
]


async def one_request(api: openai.AsyncOpenAI, i: int, tally: Tally, stop_at: list[float]) -> None:
    tally.sent += 1
    started = time.monotonic()
    try:
        stream = await api.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": f"request {i}"}],
            max_tokens=MAX_TOKENS, stream=True, stream_options={"include_usage": True},
        )  # fmt: skip
        ids, finish, usage = set(), None, None
        async for chunk in stream:
            ids.add(chunk.id)
            if chunk.choices and chunk.choices[0].finish_reason is not None:
                finish = chunk.choices[0].finish_reason
            if chunk.usage is not None:
                usage = chunk.usage
        complete = usage is not None and usage.completion_tokens == MAX_TOKENS
        if finish is not None and len(ids) == 1 and complete:
            tally.ok += 1
            tally.latencies_s.append(time.monotonic() - started)
        else:
            tally.truncated += 1
    except openai.APIConnectionError as exc:
        if stop_at and started >= stop_at[0] - 0.05:
            tally.refused_after_shutdown += 1
            raise _Stop from exc
        tally.failed[f"connection: {exc.__cause__!r}"[:80]] += 1
    except openai.APIStatusError as exc:
        tally.failed[f"HTTP {exc.status_code}"] += 1
    except openai.APIError as exc:
        tally.failed[f"stream error: {exc.message}"[:80]] += 1


class _Stop(Exception):
    """The gateway is gone: this client stops sending."""


async def load(url: str, duration_s: float, concurrency: int, tally: Tally, stop_at: list[float]):
    api = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)
    deadline = time.monotonic() + duration_s
    counter = iter(range(10**9))

    async def worker() -> None:
        while time.monotonic() < deadline:
            try:
                await one_request(api, next(counter), tally, stop_at)
            except _Stop:
                return

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await api.close()


def run_scenario(scenario: Scenario, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    procs = ProcessGroup()
    try:
        engines = [
            procs.engine(speed=args.speed, extra=flags) if "--speed" not in flags else
            procs.engine(speed=float(flags[1]), extra=flags[2:])
            for flags in scenario.engine_flags
        ]  # fmt: skip
        access_log = os.environ.get("FAULTS_ACCESS_LOG", "off")  # a path, to debug a scenario
        config = fleet_config(
            [e.url for e in engines], profile="default",
            timeouts={"connect_s": 0.5, "first_byte_s": 1.0, "idle_s": 2.0, "total_s": 60},
            health={"interval_s": 0.2, "timeout_s": 0.5},
            gateway={"access_log": access_log, "shutdown_grace_s": 20},
        )  # fmt: skip
        url = procs.gateway(config, workdir)
        gateway = procs.processes[-1]
        tally = Tally()
        stop_at: list[float] = []

        async def drive() -> None:
            task = asyncio.create_task(load(url, args.duration, args.concurrency, tally, stop_at))
            if scenario.inject is not None:
                await asyncio.sleep(scenario.inject_at_s)
                if scenario.inject is sigterm_gateway:
                    stop_at.append(time.monotonic())
                scenario.inject(procs, engines, gateway)
            await task

        asyncio.run(drive())
        latencies = sorted(tally.latencies_s)
        return {
            "scenario": scenario.name,
            "exempt": scenario.exempt,
            "sent": tally.sent,
            "ok": tally.ok,
            "truncated": tally.truncated,
            "failed": sum(tally.failed.values()),
            "failed_by_cause": dict(tally.failed),
            "refused_after_shutdown": tally.refused_after_shutdown,
            "e2e_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
            "e2e_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1)
            if latencies
            else None,
        }
    finally:
        procs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="load seconds per scenario")
    parser.add_argument("--concurrency", type=int, default=16, help="streams kept in flight")
    parser.add_argument("--speed", type=float, default=2.0, help="engine time scale")
    parser.add_argument("--only", default="", help="comma-separated scenario name prefixes")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.only or any(
        s.name.startswith(p) for p in args.only.split(","))]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in chosen:
            print(f"… {scenario.name}", file=sys.stderr, flush=True)
            rows.append(run_scenario(scenario, args, Path(tmp)))
    header = f"{'scenario':34} {'sent':>6} {'ok':>6} {'failed':>6} {'trunc':>6} {'refused*':>8} {'p50 ms':>8} {'p99 ms':>8}"  # noqa: E501
    print(header)
    for row in rows:
        print(
            f"{row['scenario']:34} {row['sent']:6d} {row['ok']:6d} {row['failed']:6d} "
            f"{row['truncated']:6d} {row['refused_after_shutdown']:8d} "
            f"{row['e2e_p50_ms'] or 0:8.1f} {row['e2e_p99_ms'] or 0:8.1f}"
            + ("   (exempt: no replica remains)" if row["exempt"] else "")
        )
        for cause, count in row["failed_by_cause"].items():
            print(f"    {count} × {cause}")
    print("* refused after shutdown: sent after the gateway stopped accepting (not accepted)")
    held = [r for r in rows if not r["exempt"]]
    met = all(r["failed"] == 0 and r["truncated"] == 0 for r in held)
    print(
        f"target (0 failed / 0 truncated outside the exempt scenario): {'MET' if met else 'MISSED'}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"args": vars(args), "rows": rows, "target_met": met}, indent=2))
    print(f"raw figures: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
