"""``--plots DIR``: PNG charts of a bench invocation (matplotlib, Agg, no pyplot state).

- ``latency_cdf.png``: CDFs of TTFT, ITL and E2E, one line per run;
- ``throughput.png``: throughput and goodput, and TTFT p50/p99, against the
  offered load (rate, or concurrency in closed loop) of each run;
- ``timeline.png``: each request's TTFT at its dispatch time (failures marked
  on the time axis) and completed requests per second, runs one after another.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpufleet.bench.report import RunRecord

FILES = ("latency_cdf.png", "throughput.png", "timeline.png")
MAX_POINTS = 2000


def write_plots(directory: Path, runs: Sequence[RunRecord]) -> list[Path]:
    """Write the charts (module doc) into ``directory`` (created); returns their paths.

    Raises ``ImportError`` when matplotlib is not installed, ``OSError`` when
    a file cannot be written.
    """
    from matplotlib.figure import Figure

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in zip(FILES, (_cdfs, _throughput, _timeline), strict=True):
        figure = Figure(figsize=(12, 4.5), layout="constrained")
        draw(figure, runs)
        path = directory / name
        figure.savefig(path, dpi=100, format="png")
        paths.append(path)
    return paths


def _cdf(values: Sequence[float]) -> tuple[list[float], list[float]]:
    """At most MAX_POINTS points of the empirical CDF of ``values`` (ms)."""
    data = sorted(values)
    if not data:
        return [], []
    step = max(1, len(data) // MAX_POINTS)
    picks = list(range(0, len(data), step))
    if picks[-1] != len(data) - 1:
        picks.append(len(data) - 1)
    return [data[i] for i in picks], [(i + 1) / len(data) for i in picks]


def _cdfs(figure: Any, runs: Sequence[RunRecord]) -> None:
    axes = figure.subplots(1, 3)
    for run in runs:
        ok = [r for r in run.results if r.error is None]
        samples = {
            "TTFT": [r.ttft_s * 1000 for r in ok if r.ttft_s is not None],
            "ITL": [v * 1000 for v in run.itl_s],
            "E2E": [r.e2e_s * 1000 for r in ok if r.e2e_s is not None],
        }
        for ax, (name, values) in zip(axes, samples.items(), strict=True):
            xs, ys = _cdf(values)
            ax.plot(xs, ys, label=run.label, drawstyle="steps-post")
            ax.set_title(f"{name} CDF")
            ax.set_xlabel(f"{name} (ms)")
    axes[0].set_ylabel("fraction of requests (ITL: of gaps)")
    for ax in axes:
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[-1].legend(loc="lower right", fontsize="small")


def _throughput(figure: Any, runs: Sequence[RunRecord]) -> None:
    left, right = figure.subplots(1, 2)
    closed = any(run.concurrency is not None for run in runs)
    xs = [float(run.concurrency or 0) if closed else (run.rate_per_s or run.stats.num_sent /
          max(run.stats.dispatch_s, 1e-9)) for run in runs]  # fmt: skip
    xlabel = "concurrency" if closed else "offered rate (requests/s)"
    left.plot(xs, [r.stats.requests_per_s for r in runs], "o-", label="throughput")
    left.plot(xs, [r.stats.goodput_requests_per_s for r in runs], "s--", label="goodput")
    if not closed:
        left.plot(xs, xs, ":", color="grey", label="offered")
    left.set_xlabel(xlabel)
    left.set_ylabel("requests/s")
    left.set_title("throughput vs load")
    left.legend(fontsize="small")
    for name, pick in (("TTFT p50", "p50"), ("TTFT p99", "p99")):
        ys = [getattr(r.stats.ttft_ms, pick) for r in runs]
        right.plot(xs, [float("nan") if y is None else y for y in ys], "o-", label=name)
    right.set_xlabel(xlabel)
    right.set_ylabel("ms")
    right.set_title("TTFT vs load")
    right.legend(fontsize="small")
    for ax in (left, right):
        ax.grid(alpha=0.3)


def _timeline(figure: Any, runs: Sequence[RunRecord]) -> None:
    top, bottom = figure.subplots(2, 1, sharex=True)
    offset = 0.0
    for run in runs:
        ok = [r for r in run.results if r.error is None and r.ttft_s is not None]
        step = max(1, len(ok) // (5 * MAX_POINTS))
        sample = ok[::step]
        top.scatter([offset + r.start_s for r in sample], [(r.ttft_s or 0) * 1000 for r in sample],
                    s=4, label=run.label)  # fmt: skip
        failed = [offset + r.start_s for r in run.results if r.error not in (None, "cancelled")]
        if failed:
            top.scatter(failed, [0.0] * len(failed), marker="x", color="red", s=12)
        ends = [offset + r.start_s + (r.e2e_s or 0) for r in run.results if r.error is None]
        if ends:
            bins = max(1, int(max(ends) - offset) + 1)
            bottom.hist(ends, bins=bins, range=(offset, offset + bins), histtype="step")
        offset += max(run.stats.wall_s, 1e-3)
    top.set_ylabel("TTFT (ms)")
    top.set_title("requests over time (x: failed)")
    top.legend(fontsize="small", markerscale=3)
    bottom.set_ylabel("completed per second")
    bottom.set_xlabel("time since start (s)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
