"""The ``--json`` results document: a stable schema, versioned by ``schema_version``.

Schema version 1 (docs/bench.md describes every field)::

    {"schema_version": 1, "tool": "gpufleet bench", "gpufleet_version", "started_at",
     "interrupted", "config": {...}, "runs": [run, ...]}

    run = {"label", "rate_per_s", "concurrency", "seed", "workload", "wall_s", "dispatch_s",
           "requests": {"sent", "completed", "failed", "cancelled"}, "errors": {cause: n},
           "throughput": {"requests_per_s", "output_tokens_per_s"},
           "goodput": {"requests_per_s", "num_good", "fraction"},
           "tokens": {"output_total", "output_per_request", "prompt_estimated_total",
                      "usage_reported"},
           "latency_ms": {"ttft", "itl", "tpot", "e2e"}, "dispatch_lag_ms"}

    distribution = {"count", "mean", "min", "p50", "p90", "p99", "max"}  (null when empty)

Adding a key is a compatible change; renaming or removing one bumps the version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gpufleet import __version__
from gpufleet.bench.exchange import RequestResult
from gpufleet.bench.stats import Distribution, RunStats

SCHEMA_VERSION = 1
TOP_KEYS = frozenset(
    {"schema_version", "tool", "gpufleet_version", "started_at", "interrupted", "config", "runs"}
)
RUN_KEYS = frozenset({
    "label", "rate_per_s", "concurrency", "seed", "workload", "wall_s", "dispatch_s",
    "requests", "errors", "throughput", "goodput", "tokens", "latency_ms", "dispatch_lag_ms",
})  # fmt: skip
DISTRIBUTION_KEYS = frozenset(f.name for f in dataclasses.fields(Distribution))


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a bench invocation (one rate of a sweep), with its raw measurements."""

    label: str
    rate_per_s: float | None
    concurrency: int | None
    seed: int
    workload: dict[str, object]
    stats: RunStats
    results: Sequence[RequestResult]
    itl_s: Sequence[float]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_document(run: RunRecord) -> dict[str, Any]:
    stats = run.stats
    return {
        "label": run.label,
        "rate_per_s": run.rate_per_s,
        "concurrency": run.concurrency,
        "seed": run.seed,
        "workload": run.workload,
        "wall_s": stats.wall_s,
        "dispatch_s": stats.dispatch_s,
        "requests": {
            "sent": stats.num_sent,
            "completed": stats.num_completed,
            "failed": stats.num_failed,
            "cancelled": stats.num_cancelled,
        },
        "errors": stats.errors,
        "throughput": {
            "requests_per_s": stats.requests_per_s,
            "output_tokens_per_s": stats.output_tokens_per_s,
        },
        "goodput": {
            "requests_per_s": stats.goodput_requests_per_s,
            "num_good": stats.num_good,
            "fraction": stats.num_good / stats.num_sent if stats.num_sent else None,
        },
        "tokens": {
            "output_total": stats.num_output_tokens,
            "output_per_request": dataclasses.asdict(stats.output_tokens),
            "prompt_estimated_total": stats.num_prompt_tokens,
            "usage_reported": stats.usage_reported,
        },
        "latency_ms": {
            "ttft": dataclasses.asdict(stats.ttft_ms),
            "itl": dataclasses.asdict(stats.itl_ms),
            "tpot": dataclasses.asdict(stats.tpot_ms),
            "e2e": dataclasses.asdict(stats.e2e_ms),
        },
        "dispatch_lag_ms": dataclasses.asdict(stats.lag_ms),
    }


def document(
    config: dict[str, object], runs: Sequence[RunRecord], started_at: str, interrupted: bool
) -> dict[str, Any]:
    """The whole results document (module doc)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "gpufleet bench",
        "gpufleet_version": __version__,
        "started_at": started_at,
        "interrupted": interrupted,
        "config": config,
        "runs": [run_document(run) for run in runs],
    }


def json_bytes(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` (parents created); ``OSError`` on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json_bytes(doc))
