"""BurstLoad: the scraped queue and KV usage corrected by what was dispatched since."""

from __future__ import annotations

import pytest

from gpufleet.routing.burst_load import BurstLoad
from gpufleet.types import RouteRequest


def request(num_tokens: int, prompt_tokens: int, priority: int) -> RouteRequest:
    """A request of ``num_tokens`` prompt + max_tokens."""
    return RouteRequest(
        model="m",
        prompt_tokens=prompt_tokens,
        max_tokens=num_tokens - prompt_tokens,
        priority=priority,
    )


def test_waiting_counts_dispatches_since_the_scrape_was_sent() -> None:
    load = BurstLoad()
    sent = load.counters()
    load.on_dispatch(request(600, 500, 0))  # dispatched while the scrape was on its way
    load.scraped(sent)
    assert load.waiting(scraped_waiting=2, scraped_running=4) == 3
    load.on_dispatch(request(600, 500, 0))
    load.on_complete(request(600, 500, 0))
    assert load.waiting(2, 4) == 3


def test_kv_usage_adds_prompts_dispatched_since_the_scrape_was_sent() -> None:
    load = BurstLoad()
    load.on_dispatch(request(9_000, 8_000, 0))  # before the scrape: in its figure already
    sent = load.counters()
    load.on_dispatch(request(1_200, 1_000, 0))
    load.scraped(sent)
    assert load.kv_usage(0.4, kv_capacity_tokens=10_000) == pytest.approx(0.5)
    for _ in range(3):
        load.on_dispatch(request(2_100, 2_000, 0))
    assert load.kv_usage(0.4, 10_000) == pytest.approx(1.0)  # capped
    load.on_complete(request(2_100, 2_000, 0))  # freed KV shows in the next scrape, not before
    assert load.kv_usage(0.1, 100_000) == pytest.approx(0.17)


def test_kv_usage_without_a_known_capacity_is_the_scraped_value() -> None:
    load = BurstLoad()
    load.on_dispatch(request(100, 90, 0))
    assert load.kv_usage(0.25, None) == 0.25
    assert load.kv_usage(0.25, 0) == 0.25


def test_a_new_scrape_resets_the_kv_correction() -> None:
    load = BurstLoad()
    load.on_dispatch(request(1_000, 1_000, 0))
    load.scraped(load.counters())
    assert load.kv_usage(0.3, 10_000) == 0.3


def test_the_highest_band_in_flight_follows_dispatches_and_completions() -> None:
    load = BurstLoad()
    assert load.max_priority_in_flight == float("-inf")
    load.on_dispatch(request(100, 90, 0))
    load.on_dispatch(request(100, 90, 10))
    load.on_dispatch(request(100, 90, 10))
    assert load.max_priority_in_flight == 10
    load.on_complete(request(100, 90, 10))
    assert load.max_priority_in_flight == 10, "one band-10 request is still in flight"
    load.on_complete(request(100, 90, 10))
    assert load.max_priority_in_flight == 0
    load.on_complete(request(100, 90, 0))
    assert load.max_priority_in_flight == float("-inf") and load.num_in_flight == 0
