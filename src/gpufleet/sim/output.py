"""Presenting a report: a rich terminal table and PNG plots (latency CDFs, load over time).

Contract: `print_report` writes to the given rich console; `write_plots`
writes ``latency_cdf.png`` and ``timeline.png`` into a directory and returns
their paths (matplotlib's Agg backend; no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from gpufleet.sim.records import FINISHED
from gpufleet.sim.simulator import Simulator


def print_report(report: dict[str, Any], console: Console) -> None:
    """Latency per model/class, then pools and cost, then outcomes."""
    table = Table(title="latency (s): p50 / p90 / p99")
    for column in ("model", "class", "requests", "TTFT", "ITL", "E2E", "queue wait", "SLO"):
        table.add_column(column)
    for g in report["latency"]:
        table.add_row(
            g["model"], g["class"], str(g["requests"]),
            *(_pct(g[k]) for k in ("ttft_s", "itl_s", "e2e_s", "queue_wait_s")),
            f"{g['slo_attainment']:.1%}",
        )  # fmt: skip
    console.print(table)
    pools = Table(title="pools")
    for column in ("pool", "gpu", "capacity", "replicas", "requests", "GPU-h", "$"):
        pools.add_column(column)
    for p in report["pools"]:
        pools.add_row(
            p["pool"], p["gpu"], p["capacity"], str(p["replicas_started"]),
            str(p["requests"]), f"{p['gpu_hours']:.2f}", f"{p['cost_usd']:.2f}",
        )  # fmt: skip
    console.print(pools)
    o, c, s = report["outcomes"], report["cost"], report["slo"]
    per_mtok = c["usd_per_million_output_tokens"]
    console.print(
        f"requests {report['requests']}: finished {o['finished']}, shed {o['shed']}, "
        f"failed {o['failed']} {o['causes'] or ''}\n"
        f"throughput {report['throughput']['requests_per_s']:.1f} req/s, "
        f"{report['throughput']['output_tokens_per_s']:.0f} output tok/s; "
        f"SLO attainment {s['attainment']:.1%}, goodput {s['goodput_requests_per_s']:.1f} req/s\n"
        f"cost ${c['total_usd']:.2f}"
        + (f", ${per_mtok:.3f} per million output tokens" if per_mtok else "")
        + f"; spot interruptions {report['preemptions']['spot_interruptions']}, "
        f"engine KV preemptions {report['preemptions']['engine_kv_preemptions']}"
    )


def write_plots(sim: Simulator, report: dict[str, Any], directory: Path) -> list[Path]:
    """Latency CDFs and load/replicas over time as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    log = sim.log
    done = np.frombuffer(log.outcome, dtype=np.int8) == FINISHED
    arrival = np.frombuffer(log.arrival_s, dtype=np.float64)[done]
    first = np.frombuffer(log.first_token_s, dtype=np.float64)[done]
    finish = np.frombuffer(log.finish_s, dtype=np.float64)[done]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, values, label in ((axes[0], first - arrival, "TTFT (s)"),
                              (axes[1], finish - arrival, "E2E (s)")):  # fmt: skip
        ordered = np.sort(values)
        if ordered.size:
            ax.plot(ordered, np.arange(1, ordered.size + 1) / ordered.size)
        ax.set_xlabel(label)
        ax.set_ylabel("fraction of requests")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    cdf = directory / "latency_cdf.png"
    fig.savefig(cdf, dpi=80)
    plt.close(fig)
    t = report["timeline"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
    bucket = t["bucket_s"]
    top.plot([i * bucket for i in range(len(t["arrivals"]))],
             [a / bucket for a in t["arrivals"]], label="arrivals/s")  # fmt: skip
    top.plot(t["t_s"], t["in_flight"], label="in flight")
    top.plot(t["t_s"], t["queued"], label="queued")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    for pool, counts in t["ready"].items():
        bottom.step(t["t_s"], counts, where="post", label=pool)
    bottom.set_ylabel("ready replicas")
    bottom.set_xlabel("time (s)")
    bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    timeline = directory / "timeline.png"
    fig.savefig(timeline, dpi=80)
    plt.close(fig)
    return [cdf, timeline]


def _pct(summary: dict[str, float]) -> str:
    return f"{summary['p50']:.3f} / {summary['p90']:.3f} / {summary['p99']:.3f}"
