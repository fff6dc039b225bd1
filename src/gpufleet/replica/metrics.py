"""``/metrics`` of the simulated replica with vLLM 0.32's names, types and labels.

Gauges and counters are read from the engine model's statistics at scrape
time; latency histograms are observed as requests progress. Every series
carries ``model_name`` and ``engine`` like vLLM's.

The text is rendered here rather than by prometheus_client: the gateway scrapes
every replica every 100 ms of model time, which at 10x speed is 100 scrapes per
wall-second per replica, and prometheus_client's generic exposition cost 1.2 ms
of CPU each (a whole core for 8 local replicas). The label strings are built
once; a scrape only formats numbers (~40 µs). The output is what
prometheus_client produced for the same series, line for line
(``tests/unit/replica/test_replica_metrics.py``).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

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


def _number(value: float) -> str:
    """A sample value or ``le`` bound as prometheus_client writes it (Go's float format)."""
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(pairs: dict[str, str]) -> str:
    """Prometheus label set, keys sorted as prometheus_client writes them."""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(pairs.items()))
    return "{" + inner + "}"


def _head(name: str, doc: str, kind: str) -> str:
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n"


class LatencyHistogram:
    """A Prometheus histogram of one label set: `observe` is a bisect and two adds."""

    __slots__ = ("_bucket_prefixes", "_counts", "_created", "_head", "_sum", "_tail", "bounds")

    def __init__(self, name: str, doc: str, buckets: tuple[float, ...], labels: dict[str, str]):
        self.bounds = buckets
        self._counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._created = time.time()
        self._head = _head(name, doc, "histogram")
        self._bucket_prefixes = [
            f"{name}_bucket{_labels({**labels, 'le': _number(bound)})} "
            for bound in (*buckets, float("inf"))
        ]
        label_text = _labels(labels)
        self._tail = (
            f"{name}_count{label_text} ",
            f"{name}_sum{label_text} ",
            _head(f"{name}_created", doc, "gauge") + f"{name}_created{label_text} ",
        )

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self.bounds, value)] += 1
        self._sum += value

    @property
    def count(self) -> int:
        return sum(self._counts)

    def render(self, out: list[str]) -> None:
        out.append(self._head)
        cumulative = 0
        for prefix, count in zip(self._bucket_prefixes, self._counts, strict=True):
            cumulative += count
            out.append(f"{prefix}{float(cumulative)!r}\n")
        count_prefix, sum_prefix, created_prefix = self._tail
        out.append(f"{count_prefix}{float(cumulative)!r}\n")
        out.append(f"{sum_prefix}{_number(self._sum)}\n")
        out.append(f"{created_prefix}{_number(self._created)}\n")


class ReplicaMetrics:
    """The replica's exposition: engine gauges and counters, four latency histograms."""

    def __init__(self, model_name: str, read: Callable[[], EngineCounters]):
        self._read = read
        engine = "0"
        labels = {"model_name": model_name, "engine": engine}
        self._series = _labels(labels) + " "
        self._engine = engine
        self._success_prefixes = [
            _labels({"engine": engine, "finished_reason": reason, "model_name": model_name}) + " "
            for reason in FINISH_REASONS
        ]
        self.ttft = LatencyHistogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
            TTFT_BUCKETS, labels,
        )  # fmt: skip
        self.itl = LatencyHistogram(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
            ITL_BUCKETS, labels,
        )  # fmt: skip
        self.e2e = LatencyHistogram(
            "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
            E2E_BUCKETS, labels,
        )  # fmt: skip
        self.queue_time = LatencyHistogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            E2E_BUCKETS, labels,
        )  # fmt: skip

    def exposition(self) -> bytes:
        s = self._read()
        series = self._series
        out: list[str] = []
        for name, doc, value in (
            ("vllm:num_requests_running", "Number of requests in model execution batches.",
             s.num_running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
             s.num_waiting),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
             s.kv_cache_usage_perc),
        ):  # fmt: skip
            out.append(f"{_head(name, doc, 'gauge')}{name}{series}{_number(value)}\n")
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
            total = f"{name}_total"
            out.append(f"{_head(total, doc, 'counter')}{total}{series}{_number(value)}\n")
        out.append(
            _head("vllm:request_success_total", "Count of successfully processed requests.",
                  "counter")
        )  # fmt: skip
        for prefix, reason in zip(self._success_prefixes, FINISH_REASONS, strict=True):
            count = _number(s.finished.get(reason, 0))
            out.append(f"vllm:request_success_total{prefix}{count}\n")
        info = _labels({
            "block_size": str(s.block_size), "enable_prefix_caching": "True",
            "engine": self._engine, "num_gpu_blocks": str(s.num_gpu_blocks),
        })  # fmt: skip
        out.append(
            _head("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", "gauge")
            + f"vllm:cache_config_info{info} 1.0\n"
        )
        lora = _labels({
            "max_lora": str(s.max_loras), "running_lora_adapters": ",".join(s.running_loras),
            "waiting_lora_adapters": ",".join(s.waiting_loras),
        })  # fmt: skip
        out.append(
            _head("vllm:lora_requests_info", "Running stats on lora requests.", "gauge")
            + f"vllm:lora_requests_info{lora} 1.0\n"
        )
        for histogram in (self.ttft, self.itl, self.e2e, self.queue_time):
            histogram.render(out)
        return "".join(out).encode()
