"""Summary statistics of a run: percentiles, throughput, goodput, errors. Pure.

Percentiles interpolate linearly between closest ranks (numpy's default
``linear`` method): for sorted values ``v[0..n-1]`` the q-th percentile is
``v[i] + (v[i+1] − v[i])·f`` where ``i + f = (n − 1)·q/100``.

Goodput counts the completed requests that met every SLO given: TTFT ≤
``slo_ttft_s`` and TPOT (the request's mean inter-token latency) ≤
``slo_itl_s``; a request with a single output token has no TPOT and meets the
ITL SLO. Without SLOs every completed request counts. Rates divide by the
run's wall time (first dispatch to last completion).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gpufleet.bench.exchange import Cause, RequestResult

PERCENTILES = (50, 90, 99)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of non-empty ascending ``sorted_values`` (module doc)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {q}")
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a sample, in the sample's unit; all ``None`` when it is empty."""

    count: int
    mean: float | None
    min: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, values: Iterable[float], scale: float = 1.0) -> Distribution:
        """Summary of ``values`` multiplied by ``scale`` (e.g. 1000 for seconds → ms)."""
        data = sorted(v * scale for v in values)
        if not data:
            return cls(0, None, None, None, None, None, None)
        p50, p90, p99 = (percentile(data, q) for q in PERCENTILES)
        return cls(len(data), math.fsum(data) / len(data), data[0], p50, p90, p99, data[-1])


@dataclass(frozen=True, slots=True)
class Slo:
    ttft_s: float | None = None
    itl_s: float | None = None

    def met_by(self, result: RequestResult) -> bool:
        if result.error is not None:
            return False
        if self.ttft_s is not None and (result.ttft_s is None or result.ttft_s > self.ttft_s):
            return False
        return self.itl_s is None or result.tpot_s is None or result.tpot_s <= self.itl_s


@dataclass(frozen=True, slots=True)
class RunStats:
    """Everything the report says about one run; latencies in milliseconds."""

    num_sent: int
    num_completed: int
    num_failed: int
    num_cancelled: int
    errors: dict[str, int]
    wall_s: float
    dispatch_s: float
    """From the run's start to the last dispatch."""
    requests_per_s: float
    output_tokens_per_s: float
    goodput_requests_per_s: float
    num_good: int
    num_output_tokens: int
    num_prompt_tokens: int
    """Estimated (the workload's estimate) over completed requests."""
    usage_reported: bool
    """Every completed request's token count came from ``usage``."""
    ttft_ms: Distribution
    itl_ms: Distribution
    tpot_ms: Distribution
    e2e_ms: Distribution
    lag_ms: Distribution
    output_tokens: Distribution


def summarize(
    results: Sequence[RequestResult], itl_s: Iterable[float], wall_s: float, slo: Slo
) -> RunStats:
    """The statistics of one run (module doc)."""
    ok = [r for r in results if r.error is None]
    causes = Counter(r.error for r in results if r.error is not None)
    num_cancelled = causes.pop(Cause.CANCELLED, 0)
    num_good = sum(1 for r in ok if slo.met_by(r))
    num_output_tokens = sum(r.num_output_tokens for r in ok)
    per_s = 1 / wall_s if wall_s > 0 else 0.0
    return RunStats(
        num_sent=len(results),
        num_completed=len(ok),
        num_failed=sum(causes.values()),
        num_cancelled=num_cancelled,
        errors=dict(sorted(causes.items())),
        wall_s=wall_s,
        dispatch_s=max((r.start_s for r in results), default=0.0),
        requests_per_s=len(ok) * per_s,
        output_tokens_per_s=num_output_tokens * per_s,
        goodput_requests_per_s=num_good * per_s,
        num_good=num_good,
        num_output_tokens=num_output_tokens,
        num_prompt_tokens=sum(r.num_prompt_tokens for r in ok),
        usage_reported=all(r.usage_reported for r in ok),
        ttft_ms=Distribution.of((r.ttft_s for r in ok if r.ttft_s is not None), 1000),
        itl_ms=Distribution.of(itl_s, 1000),
        tpot_ms=Distribution.of((r.tpot_s for r in ok if r.tpot_s is not None), 1000),
        e2e_ms=Distribution.of((r.e2e_s for r in ok if r.e2e_s is not None), 1000),
        lag_ms=Distribution.of((r.lag_s for r in results), 1000),
        output_tokens=Distribution.of(float(r.num_output_tokens) for r in ok),
    )
