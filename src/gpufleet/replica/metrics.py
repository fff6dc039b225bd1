"""``/metrics`` of the simulated replica with vLLM 0.32's names, types and labels.

Gauges and counters are read from the engine model's statistics at scrape
time (one collector); latency histograms are observed as requests progress.
Every series carries ``model_name`` and ``engine`` like vLLM's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

LABELS = ("model_name", "engine")
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
    7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
E2E_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")


@dataclass(frozen=True)
class EngineCounters:
    """A snapshot of what the engine model counts, in vLLM's units."""

    num_running: int
    num_waiting: int
    kv_cache_usage_perc: float
    num_gpu_blocks: int
    block_size: int
    prefix_cache_queries: int
    prefix_cache_hits: int
    num_preemptions: int
    prompt_tokens: int
    generation_tokens: int
    finished: dict[str, int]
    running_loras: tuple[str, ...] = ()
    waiting_loras: tuple[str, ...] = ()
    max_loras: int = 0


class _EngineCollector(Collector):
    def __init__(self, labels: tuple[str, str], read: Callable[[], EngineCounters]):
        self._labels = labels
        self._read = read

    def collect(self) -> Iterator[Metric]:
        s = self._read()
        model, engine = self._labels
        gauges = (
            ("vllm:num_requests_running", "Number of requests in model execution batches.",
             s.num_running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
             s.num_waiting),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
             s.kv_cache_usage_perc),
        )  # fmt: skip
        for name, doc, value in gauges:
            family = GaugeMetricFamily(name, doc, labels=LABELS)
            family.add_metric([model, engine], value)
            yield family
        counters = (
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
        )  # fmt: skip
        for name, doc, value in counters:
            counter = CounterMetricFamily(name, doc, labels=LABELS)
            counter.add_metric([model, engine], value)
            yield counter
        success = CounterMetricFamily(
            "vllm:request_success",
            "Count of successfully processed requests.",
            labels=("engine", "finished_reason", "model_name"),
        )
        for reason in FINISH_REASONS:
            success.add_metric([engine, reason, model], s.finished.get(reason, 0))
        yield success
        info = GaugeMetricFamily(
            "vllm:cache_config_info",
            "Information of the LLMEngine CacheConfig",
            labels=("block_size", "enable_prefix_caching", "engine", "num_gpu_blocks"),
        )
        info.add_metric([str(s.block_size), "True", engine, str(s.num_gpu_blocks)], 1.0)
        yield info
        lora = GaugeMetricFamily(
            "vllm:lora_requests_info",
            "Running stats on lora requests.",
            labels=("max_lora", "running_lora_adapters", "waiting_lora_adapters"),
        )
        lora.add_metric(
            [str(s.max_loras), ",".join(s.running_loras), ",".join(s.waiting_loras)], 1.0
        )
        yield lora


class ReplicaMetrics:
    def __init__(self, model_name: str, read: Callable[[], EngineCounters]):
        self.registry = CollectorRegistry()
        labels = (model_name, "0")
        self.registry.register(_EngineCollector(labels, read))

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            metric = Histogram(name, doc, LABELS, buckets=buckets, registry=self.registry)
            return metric.labels(*labels)

        self.ttft = histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
            TTFT_BUCKETS,
        )  # fmt: skip
        self.itl = histogram(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
            ITL_BUCKETS,
        )  # fmt: skip
        self.e2e = histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            E2E_BUCKETS,
        )
        self.queue_time = histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            E2E_BUCKETS,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
