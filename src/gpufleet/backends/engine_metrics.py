"""Engine signals from a replica's ``/metrics``: the name table, kind detection, a fast parser.

The names of the same signal differ per engine and version; they live in
``METRIC_NAMES`` (data, not code paths). The engine kind is detected from the
names an endpoint exposes. Parsing is targeted: only the lines of wanted
families are read (a vLLM page is ~50 KB; scraping eight replicas every
100 ms must cost microseconds, not a full exposition parse).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

METRIC_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    # kind → signal → candidate names, preferred first (current, then deprecated).
    "vllm": {
        "num_waiting": ("vllm:num_requests_waiting",),
        "num_running": ("vllm:num_requests_running",),
        "kv_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        "prefix_cache_queries": (
            "vllm:prefix_cache_queries_total",
            "vllm:gpu_prefix_cache_queries_total",
        ),
        "prefix_cache_hits": ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"),
        "num_preemptions": ("vllm:num_preemptions_total",),
        "cache_config_info": ("vllm:cache_config_info",),
        "lora_requests_info": ("vllm:lora_requests_info",),
    },
    "sglang": {
        "num_waiting": ("sglang:num_queue_reqs",),
        "num_running": ("sglang:num_running_reqs",),
        "kv_usage": ("sglang:token_usage",),
        "prefix_cache_hits": ("sglang:cache_hit_rate",),
    },
    "tgi": {
        "num_waiting": ("tgi_queue_size",),
        "num_running": ("tgi_batch_current_size",),
    },
}
DETECT_BY = {"vllm": b"vllm:num_requests_", "sglang": b"sglang:", "tgi": b"tgi_queue_size"}
_LABEL = re.compile(rb'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class EngineMetrics:
    """One scrape's signals; ``None`` where the engine does not expose one."""

    kind: str
    num_waiting: float | None = None
    num_running: float | None = None
    kv_usage: float | None = None
    prefix_cache_queries: float | None = None
    prefix_cache_hits: float | None = None
    num_preemptions: float | None = None
    num_gpu_blocks: int | None = None
    block_size: int | None = None
    running_lora_adapters: tuple[str, ...] = ()
    waiting_lora_adapters: tuple[str, ...] = ()
    max_loras: int | None = None


def detect_kind(text: bytes) -> str | None:
    for kind, marker in DETECT_BY.items():
        if marker in text:
            return kind
    return None


def parse_metrics(text: bytes, kind: str | None = None) -> EngineMetrics | None:
    """Parse the signals of ``text``; ``None`` when the engine kind is unknown."""
    kind = kind or detect_kind(text)
    if kind is None:
        return None
    names = METRIC_NAMES[kind]
    values: dict[str, float | None] = {}
    for signal in ("num_waiting", "num_running", "kv_usage", "prefix_cache_queries",
                   "prefix_cache_hits", "num_preemptions"):  # fmt: skip
        values[signal] = _first_sum(text, names.get(signal, ()))
    blocks = block_size = max_loras = None
    running: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    cache_info = _labels_of(text, names.get("cache_config_info", ()))
    if cache_info:
        blocks = _int_or_none(cache_info.get("num_gpu_blocks"))
        block_size = _int_or_none(cache_info.get("block_size"))
    lora_info = _labels_of(text, names.get("lora_requests_info", ()))
    if lora_info:
        running = _split_list(lora_info.get("running_lora_adapters", ""))
        waiting = _split_list(lora_info.get("waiting_lora_adapters", ""))
        max_loras = _int_or_none(lora_info.get("max_lora"))
    return EngineMetrics(
        kind=kind,
        num_gpu_blocks=blocks,
        block_size=block_size,
        running_lora_adapters=running,
        waiting_lora_adapters=waiting,
        max_loras=max_loras,
        **values,
    )


def _first_sum(text: bytes, names: tuple[str, ...]) -> float | None:
    """Sum of the samples of the first name in ``names`` present in ``text``."""
    for name in names:
        total = _sum_samples(text, name.encode())
        if total is not None:
            return total
    return None


def _sample_lines(text: bytes, name: bytes) -> list[bytes]:
    lines = []
    start = text.find(b"\n" + name)
    while start >= 0:
        end = text.find(b"\n", start + 1)
        line = text[start + 1 : end if end >= 0 else len(text)]
        rest = line[len(name) : len(name) + 1]
        if rest in (b"{", b" "):
            lines.append(line)
        start = text.find(b"\n" + name, start + 1)
    return lines


def _sum_samples(text: bytes, name: bytes) -> float | None:
    lines = _sample_lines(b"\n" + text if text.startswith(name) else text, name)
    if not lines:
        return None
    total = 0.0
    for line in lines:
        value = _value(line)
        if value is not None:
            total += value
    return total


def _value(line: bytes) -> float | None:
    closing = line.rfind(b"}")
    tail = line[closing + 1 :] if closing >= 0 else line.split(b" ", 1)[-1]
    parts = tail.split()
    if not parts:
        return None
    try:
        value = float(parts[0])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _labels_of(text: bytes, names: tuple[str, ...]) -> dict[str, str]:
    for name in names:
        lines = _sample_lines(text, name.encode())
        if lines:
            line = lines[0]
            return {
                key.decode(): value.decode(errors="replace")
                for key, value in _LABEL.findall(line[: line.rfind(b"}") + 1])
            }
    return {}


def _int_or_none(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(part for part in value.split(",") if part)
