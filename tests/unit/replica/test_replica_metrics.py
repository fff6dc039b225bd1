"""The replica's hand-rendered /metrics is what prometheus_client writes for the same series."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from gpufleet.replica.metrics import (
    E2E_BUCKETS,
    FINISH_REASONS,
    ITL_BUCKETS,
    TTFT_BUCKETS,
    EngineCounters,
    ReplicaMetrics,
)

COUNTERS = EngineCounters(
    num_running=7, num_waiting=2, kv_cache_usage_perc=0.3721, num_gpu_blocks=27673,
    block_size=16, prefix_cache_queries=123456789, prefix_cache_hits=98765,
    num_preemptions=3, prompt_tokens=10**7, generation_tokens=4321,
    finished={"length": 40, "abort": 2}, running_loras=("a", "b"), waiting_loras=("c",),
    max_loras=4,
)  # fmt: skip
OBSERVED = {
    "ttft": [0.0005, 0.001, 0.0123, 0.9, 3000.0],
    "itl": [0.007, 0.0099, 0.2, 81.0],
    "e2e": [1.5, 12.25, 10_000.0],
}
LE = ("le",)


class _Reference(Collector):
    """The engine's series through prometheus_client's own families (the former code)."""

    def __init__(self, model: str, counters: EngineCounters):
        self.model, self.s = model, counters

    def collect(self) -> Iterator[Metric]:
        s, labels = self.s, [self.model, "0"]
        for name, doc, value in (
            ("vllm:num_requests_running", "Number of requests in model execution batches.",
             s.num_running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
             s.num_waiting),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
             s.kv_cache_usage_perc),
        ):  # fmt: skip
            gauge = GaugeMetricFamily(name, doc, labels=("model_name", "engine"))
            gauge.add_metric(labels, value)
            yield gauge
        for name, doc, value in (
            ("vllm:prefix_cache_queries",
             "Prefix cache queries, in terms of number of queried tokens.",
             s.prefix_cache_queries),
            ("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.",
             s.prefix_cache_hits),
            ("vllm:num_preemptions", "Cumulative number of preemption from the engine.",
             s.num_preemptions),
            ("vllm:prompt_tokens", "Number of prefill tokens processed.", s.prompt_tokens),
            ("vllm:generation_tokens", "Number of generation tokens processed.",
             s.generation_tokens),
        ):  # fmt: skip
            counter = CounterMetricFamily(name, doc, labels=("model_name", "engine"))
            counter.add_metric(labels, value)
            yield counter
        success = CounterMetricFamily(
            "vllm:request_success", "Count of successfully processed requests.",
            labels=("engine", "finished_reason", "model_name"),
        )  # fmt: skip
        for reason in FINISH_REASONS:
            success.add_metric(["0", reason, self.model], s.finished.get(reason, 0))
        yield success
        info = GaugeMetricFamily(
            "vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
            labels=("block_size", "enable_prefix_caching", "engine", "num_gpu_blocks"),
        )  # fmt: skip
        info.add_metric([str(s.block_size), "True", "0", str(s.num_gpu_blocks)], 1.0)
        yield info
        lora = GaugeMetricFamily(
            "vllm:lora_requests_info", "Running stats on lora requests.",
            labels=("max_lora", "running_lora_adapters", "waiting_lora_adapters"),
        )  # fmt: skip
        lora.add_metric(
            [str(s.max_loras), ",".join(s.running_loras), ",".join(s.waiting_loras)], 1.0
        )
        yield lora


def reference_text(model: str) -> str:
    registry = CollectorRegistry()
    registry.register(_Reference(model, COUNTERS))
    for key, name, doc, buckets in (
        ("ttft", "vllm:time_to_first_token_seconds",
         "Histogram of time to first token in seconds.", TTFT_BUCKETS),
        ("itl", "vllm:inter_token_latency_seconds",
         "Histogram of inter-token latency in seconds.", ITL_BUCKETS),
        ("e2e", "vllm:e2e_request_latency_seconds",
         "Histogram of e2e request latency in seconds.", E2E_BUCKETS),
        ("queue", "vllm:request_queue_time_seconds",
         "Histogram of time spent in WAITING phase for request.", E2E_BUCKETS),
    ):  # fmt: skip
        histogram = Histogram(
            name, doc, ("model_name", "engine"), buckets=buckets, registry=registry
        ).labels(model, "0")
        for value in OBSERVED.get(key, []):
            histogram.observe(value)
    return generate_latest(registry).decode()


def ours(model: str) -> ReplicaMetrics:
    metrics = ReplicaMetrics(model, lambda: COUNTERS)
    for key, values in OBSERVED.items():
        for value in values:
            getattr(metrics, key).observe(value)
    return metrics


def without_created_values(text: str) -> str:
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", text)


@pytest.mark.parametrize("model", ["llama-3-8b", 'odd "name" \\ here'])
def test_exposition_is_line_for_line_prometheus_clients(model: str) -> None:
    expected = without_created_values(reference_text(model))
    assert without_created_values(ours(model).exposition().decode()) == expected


def test_exposition_parses_and_counts_every_observation() -> None:
    metrics = ours("m")
    samples = {
        (s.name, s.labels.get("le"), s.labels.get("finished_reason")): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }
    assert samples[("vllm:time_to_first_token_seconds_count", None, None)] == 5
    assert samples[("vllm:time_to_first_token_seconds_bucket", "0.001", None)] == 2  # le: ≤
    assert samples[("vllm:time_to_first_token_seconds_bucket", "+Inf", None)] == 5
    assert samples[("vllm:inter_token_latency_seconds_sum", None, None)] == pytest.approx(
        sum(OBSERVED["itl"])
    )
    assert samples[("vllm:request_success_total", None, "length")] == 40
    assert samples[("vllm:kv_cache_usage_perc", None, None)] == 0.3721
    assert metrics.ttft.count == 5
