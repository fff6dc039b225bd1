"""What a person sees: the live progress line while a run goes, and the final tables.

The live display (rich, on stderr) refreshes four times a second from the
runner's counters; it is off with ``-q`` or when stderr is not a terminal.
The final report goes to stdout: per run a summary line and a latency table
(p50/p90/p99/mean of TTFT, ITL, TPOT, E2E in ms), and for a sweep one row
per run.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gpufleet.bench.report import RunRecord
from gpufleet.bench.runner import Runner
from gpufleet.bench.stats import Distribution

REFRESH_S = 0.25


class LiveProgress:
    """A one-line live display of a runner's progress; `stop` removes it."""

    def __init__(self, runner: Runner, label: str, stream: IO[str]):
        self._runner = runner
        self._label = label
        self._live = Live(console=Console(file=stream), auto_refresh=False, transient=True)
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._live.start()
        self._refresh()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._live.stop()

    def _refresh(self) -> None:
        runner = self._runner
        elapsed = runner.elapsed_s
        ttft = runner.recent_ttft_s
        ttft_text = f"{statistics.median(ttft) * 1000:.0f} ms" if ttft else "-"
        rate = runner.num_ok / elapsed if elapsed > 0 else 0.0
        line = Text.assemble(
            (self._label, "bold"),
            f" {elapsed:.1f}s sent {runner.num_sent} ok {runner.num_ok} ",
            (f"err {runner.num_failed}", "red" if runner.num_failed else ""),
            f" inflight {runner.num_in_flight} | {rate:.1f} req/s TTFT p50 {ttft_text}",
            no_wrap=True,
            overflow="ellipsis",
        )
        self._live.update(line, refresh=True)
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(REFRESH_S, self._refresh)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def summary_line(run: RunRecord) -> str:
    s = run.stats
    errors = ", ".join(f"{cause} {n}" for cause, n in s.errors.items())
    parts = [
        f"{run.label}: {s.num_sent} sent, {s.num_completed} completed, {s.num_failed} failed"
        + (f" ({errors})" if errors else "")
        + (f", {s.num_cancelled} cancelled" if s.num_cancelled else ""),
        f"{s.requests_per_s:,.2f} req/s, {s.output_tokens_per_s:,.0f} output tokens/s, "
        f"goodput {s.goodput_requests_per_s:,.2f} req/s over {s.wall_s:.2f} s",
    ]
    return "\n  ".join(parts)


def latency_table(run: RunRecord) -> Table:
    table = Table(title_justify="left", box=None, padding=(0, 2))
    for head in ("ms", "p50", "p90", "p99", "mean", "max", "count"):
        table.add_column(head, justify="left" if head == "ms" else "right")
    rows: list[tuple[str, Distribution]] = [
        ("TTFT", run.stats.ttft_ms),
        ("ITL", run.stats.itl_ms),
        ("TPOT", run.stats.tpot_ms),
        ("E2E", run.stats.e2e_ms),
    ]
    for name, d in rows:
        table.add_row(name, _ms(d.p50), _ms(d.p90), _ms(d.p99), _ms(d.mean), _ms(d.max),
                      str(d.count))  # fmt: skip
    return table


def sweep_table(runs: Sequence[RunRecord]) -> Table:
    table = Table(title="sweep", title_justify="left")
    heads = ("run", "req/s", "tok/s", "goodput/s", "TTFT p50", "TTFT p99", "ITL p99",
             "E2E p99", "errors")  # fmt: skip
    for head in heads:
        table.add_column(head, justify="left" if head == "run" else "right")
    for run in runs:
        s = run.stats
        table.add_row(
            run.label, f"{s.requests_per_s:,.2f}", f"{s.output_tokens_per_s:,.0f}",
            f"{s.goodput_requests_per_s:,.2f}", _ms(s.ttft_ms.p50), _ms(s.ttft_ms.p99),
            _ms(s.itl_ms.p99), _ms(s.e2e_ms.p99), str(s.num_failed),
        )  # fmt: skip
    return table


def print_report(runs: Sequence[RunRecord], stream: IO[str]) -> None:
    """The final tables (module doc) on ``stream``."""
    console = Console(file=stream, highlight=False)
    if not console.is_terminal:
        console = Console(file=stream, highlight=False, width=120)
    for run in runs:
        console.print(summary_line(run))
        console.print(latency_table(run))
    if len(runs) > 1:
        console.print(sweep_table(runs))
