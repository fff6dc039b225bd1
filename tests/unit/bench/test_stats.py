"""Summary statistics: percentiles, distributions, throughput, goodput and error counts."""

from __future__ import annotations

import random

import pytest

from gpufleet.bench.exchange import RequestResult
from gpufleet.bench.stats import Distribution, Slo, percentile, summarize


def result(
    ttft: float | None = 0.1,
    tpot: float | None = 0.02,
    tokens: int = 10,
    error: str | None = None,
    start: float = 0.0,
) -> RequestResult:
    ok = error is None
    return RequestResult(
        spec_index=0, start_s=start, lag_s=0.001, ttft_s=ttft if ok else None,
        e2e_s=(ttft or 0) + (tpot or 0) * (tokens - 1) if ok else None, tpot_s=tpot if ok else None,
        num_output_tokens=tokens if ok else 0, num_chunks=tokens, num_prompt_tokens=5,
        usage_reported=True, error=error,
    )  # fmt: skip


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [percentile(values, q) for q in (0, 25, 50, 90, 100)] == [1.0, 2.0, 3.0, 4.6, 5.0]
    assert percentile([7.0], 99) == 7.0
    assert percentile([0.0, 10.0], 99) == pytest.approx(9.9)
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_percentile_matches_the_rank_definition_on_random_data() -> None:
    rng = random.Random(0)
    data = sorted(rng.random() for _ in range(1001))
    assert percentile(data, 50) == data[500]
    assert percentile(data, 90) == data[900]
    assert percentile(data, 99) == pytest.approx(data[990])


def test_distribution_is_ordered_and_scaled() -> None:
    rng = random.Random(1)
    d = Distribution.of((rng.expovariate(10) for _ in range(5000)), scale=1000)
    assert d.count == 5000
    assert d.min is not None and d.p50 is not None and d.p90 is not None and d.p99 is not None
    assert d.min <= d.p50 <= d.p90 <= d.p99 <= (d.max or 0)
    assert d.mean == pytest.approx(100, rel=0.05), "mean 0.1 s in ms"
    empty = Distribution.of([])
    assert empty.count == 0 and empty.p50 is None and empty.mean is None


def test_summarize_counts_rates_and_errors() -> None:
    results = [result() for _ in range(8)] + [
        result(error="http_500"), result(error="timeout"), result(error="cancelled")
    ]  # fmt: skip
    stats = summarize(results, [0.02] * 72, wall_s=2.0, slo=Slo())
    assert (stats.num_sent, stats.num_completed, stats.num_failed, stats.num_cancelled) == (
        11, 8, 2, 1
    )  # fmt: skip
    assert stats.errors == {"http_500": 1, "timeout": 1}
    assert stats.requests_per_s == 4.0
    assert stats.output_tokens_per_s == 40.0
    assert stats.goodput_requests_per_s == 4.0, "no SLO: every completed request is good"
    assert stats.num_prompt_tokens == 40
    assert stats.itl_ms.count == 72 and stats.itl_ms.p50 == pytest.approx(20.0)
    assert stats.ttft_ms.count == 8 and stats.ttft_ms.p99 == pytest.approx(100.0)


def test_goodput_needs_every_slo_given() -> None:
    results = [
        result(ttft=0.05, tpot=0.01),  # good
        result(ttft=0.30, tpot=0.01),  # TTFT too slow
        result(ttft=0.05, tpot=0.08),  # ITL too slow
        result(ttft=0.05, tpot=None, tokens=1),  # one token: no ITL to judge
        result(ttft=None, tpot=None),  # no content: cannot meet a TTFT SLO
        result(error="http_503"),
    ]
    both = summarize(results, [], wall_s=1.0, slo=Slo(ttft_s=0.2, itl_s=0.05))
    assert both.num_good == 2 and both.goodput_requests_per_s == 2.0
    ttft_only = summarize(results, [], wall_s=1.0, slo=Slo(ttft_s=0.2))
    assert ttft_only.num_good == 3
    itl_only = summarize(results, [], wall_s=2.0, slo=Slo(itl_s=0.05))
    assert itl_only.num_good == 4 and itl_only.goodput_requests_per_s == 2.0
