"""The fleet page's figures: histogram quantiles and the sliding window of counters."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry

from gpufleet.api.dashboard_data import Counters, RecentWindow, Series, quantile, read_counters
from gpufleet.metrics import GatewayMetrics

INF = math.inf


def test_quantile_interpolates_like_prometheus() -> None:
    bounds = [0.1, 0.2, 0.4, INF]
    assert quantile(0.5, bounds, [0, 10, 10, 10]) == pytest.approx(0.15)
    assert quantile(0.9, bounds, [5, 5, 10, 10]) == pytest.approx(0.2 + 0.2 * 4 / 5)
    assert quantile(0.99, bounds, [0, 0, 0, 4]) == 0.4, "+Inf bucket: its lower bound"
    assert quantile(0.5, bounds, [0, 0, 0, 0]) is None
    assert quantile(0.5, [], []) is None


def series(count: float, total: float) -> Series:
    return Series([1.0, INF], [count, count], total, count)


def test_window_reports_deltas_over_the_window() -> None:
    window = RecentWindow(now_s=0.0, window_s=10.0)
    first = {"e": Counters(series(2, 0.2), series(0, 0), num_requests=2, generation_tokens=20)}
    rates = window.rates(5.0, first)["e"]
    assert rates.requests_per_s == pytest.approx(2 / 5)
    assert rates.tokens_per_s == pytest.approx(4.0)
    assert rates.ttft["mean_s"] == pytest.approx(0.1)
    assert rates.itl == {"mean_s": None, "p90_s": None}
    later = {"e": Counters(series(6, 1.0), series(0, 0), num_requests=6, generation_tokens=100)}
    window.rates(12.0, later)  # the 0 s baseline falls out of the 10 s window
    rates = window.rates(16.0, later)["e"]
    assert rates.window_s == pytest.approx(11.0), "measured from the 5 s snapshot"
    assert rates.requests_per_s == pytest.approx(4 / 11)
    assert rates.ttft["mean_s"] == pytest.approx(0.8 / 4)


def test_polls_closer_than_a_second_keep_one_snapshot() -> None:
    window = RecentWindow(now_s=0.0, window_s=10.0)
    for step in range(100):
        window.rates(step * 0.01, {})
    assert len(window._snapshots) == 1


def test_reads_the_gateway_metrics() -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    children = metrics.for_endpoint("m", "pool", "h100", "pool/m/0")
    children.ttft.observe(0.05)
    children.itl.observe(0.01)
    children.itl.observe(0.03)
    children.e2e.observe(0.5)
    children.generation_tokens.inc(7)
    counters = read_counters(metrics)["pool/m/0"]
    assert counters.ttft.count == 1 and counters.ttft.sum == pytest.approx(0.05)
    assert counters.itl.count == 2 and counters.itl.bounds[-1] == INF
    assert counters.num_requests == 1 and counters.generation_tokens == 7
