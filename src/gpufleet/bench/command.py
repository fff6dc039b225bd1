"""``gpufleet bench``: options → runs (one per rate of a sweep) → tables, JSON, plots.

Exit codes: 0 when at least one request completed, 1 when none did or the
server could not be asked for its models, 2 for a usage error, 130 when
interrupted (the runs so far are still reported). Errors are one line on
stderr (``gpufleet bench: ...``); ``-v`` adds the traceback of I/O errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import resource
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import uvloop

from gpufleet.bench.connection import ConnectionPool
from gpufleet.bench.console import LiveProgress, print_report
from gpufleet.bench.discovery import first_model
from gpufleet.bench.options import BenchOptions, UsageError, options_from_args
from gpufleet.bench.report import RunRecord, document, json_bytes, now_iso, write_json
from gpufleet.bench.request import RequestEncoder
from gpufleet.bench.runner import Runner
from gpufleet.bench.stats import summarize

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Unreachable(Exception):
    """The server could not be asked for its models."""


def run_bench(args: argparse.Namespace) -> int:
    """Run the command for parsed ``args``; returns the exit code (module doc)."""
    try:
        options = options_from_args(args)
        if options.plots_dir is not None and importlib.util.find_spec("matplotlib") is None:
            raise UsageError("--plots needs matplotlib (pip install matplotlib)")
    except UsageError as exc:
        return _fail(f"error: {exc}", EXIT_USAGE)
    _raise_open_file_limit()
    started_at = now_iso()
    try:
        options, runs, interrupted = uvloop.run(_run_all(options))
    except _Unreachable as exc:
        return _fail(str(exc), EXIT_FAILED)
    to_stdout = options.json_path == Path("-")
    print_report(runs, sys.stderr if to_stdout else sys.stdout)
    try:
        if options.json_path is not None:
            doc = document(options.describe(), runs, started_at, interrupted)
            if to_stdout:  # a script's view: the JSON alone on stdout
                sys.stdout.buffer.write(json_bytes(doc))
                sys.stdout.flush()
            else:
                write_json(options.json_path, doc)
        if options.plots_dir is not None:
            from gpufleet.bench.plots import write_plots

            write_plots(options.plots_dir, runs)
    except OSError as exc:
        if options.verbose:
            raise
        return _fail(f"cannot write {exc.filename}: {exc.strerror}", EXIT_FAILED)
    if interrupted:
        return EXIT_INTERRUPTED
    return _verdict(runs)


def _verdict(runs: Sequence[RunRecord]) -> int:
    sent = sum(run.stats.num_sent for run in runs)
    if sent == 0:
        return _fail("no request was sent (the workload or the limits left none)", EXIT_FAILED)
    if sum(run.stats.num_completed for run in runs) == 0:
        causes: dict[str, int] = {}
        for run in runs:
            for cause, count in run.stats.errors.items():
                causes[cause] = causes.get(cause, 0) + count
        listed = ", ".join(f"{cause}: {n}" for cause, n in sorted(causes.items()))
        return _fail(f"all {sent} requests failed ({listed})", EXIT_FAILED)
    return EXIT_OK


def _fail(message: str, code: int) -> int:
    print(f"gpufleet bench: {message}", file=sys.stderr)
    return code


async def _run_all(options: BenchOptions) -> tuple[BenchOptions, list[RunRecord], bool]:
    if not options.request.model:
        try:
            model = await first_model(
                options.target, options.request.headers, min(options.load.timeout_s, 10.0)
            )
        except ConnectionError as exc:
            raise _Unreachable(
                f"cannot list the models of {options.url} ({exc}); is it up? (or give --model)"
            ) from None
        options = dataclasses.replace(
            options, request=dataclasses.replace(options.request, model=model)
        )
    encoder = RequestEncoder(options.target, options.request)
    loop = asyncio.get_running_loop()
    show_progress = not options.quiet and sys.stderr.isatty()
    runs: list[RunRecord] = []
    for number, rate in enumerate(options.rates_per_s):
        workload = options.workload(rate)
        target = options.target
        pool = ConnectionPool(target.host, target.port, target.tls)
        runner = Runner(pool, encoder, options.load, options.request.stream)
        label = _label(options, rate)
        progress = LiveProgress(runner, label, sys.stderr) if show_progress else None
        loop.add_signal_handler(signal.SIGINT, runner.interrupt)
        if progress is not None:
            progress.start()
        try:
            outcome = await runner.run(workload.requests(options.seed + number))
        finally:
            if progress is not None:
                progress.stop()
            loop.remove_signal_handler(signal.SIGINT)
            pool.close()
        stats = summarize(outcome.results, outcome.itl_s, outcome.wall_s, options.slo)
        runs.append(
            RunRecord(
                label,
                rate,
                options.load.concurrency,
                options.seed + number,
                workload.describe(),
                stats,
                outcome.results,
                outcome.itl_s,
            )
        )
        if outcome.interrupted:
            return options, runs, True
    return options, runs, False


def _label(options: BenchOptions, rate: float | None) -> str:
    if options.load.concurrency is not None:
        return f"concurrency {options.load.concurrency}"
    if rate is not None:
        return f"{rate:g} req/s"
    return "trace" if options.workload_name == "azure" else "steps"


def _raise_open_file_limit() -> None:
    """Open loops may hold thousands of connections: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
