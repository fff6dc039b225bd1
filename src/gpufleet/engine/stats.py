"""Snapshots of an engine model's state, shaped after vLLM's ``/metrics`` gauges and counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Gauges (``num_*`` now) and counters (``*_total``, ``*_tokens`` since start).

    ``kv_cache_usage_perc`` is a fraction in [0, 1] like vLLM's gauge:
    ``1 − free_blocks / (num_gpu_blocks − 1)``. Prefix-cache queries and hits
    are in tokens and count first admissions only; re-admissions after a
    preemption are counted in the ``preempted_*`` pair (as vLLM splits them).
    ``num_prompt_tokens_total`` grows by a request's prompt length when its
    first token is produced; ``num_generation_tokens_total`` by each output token.
    """

    num_waiting: int
    num_running: int
    num_gpu_blocks: int
    block_size: int
    num_free_blocks: int
    kv_cache_usage_perc: float
    prefix_cache_queries_tokens: int
    prefix_cache_hits_tokens: int
    preempted_prefix_cache_queries_tokens: int
    preempted_prefix_cache_hits_tokens: int
    num_preemptions: int
    num_prompt_tokens_total: int
    num_generation_tokens_total: int
    num_requests_finished: int
    num_requests_aborted: int
    num_steps: int
    max_loras: int
    running_lora_adapters: tuple[str, ...]
    waiting_lora_adapters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RequestProgress:
    """Where one live request stands. ``num_cached_prompt_tokens`` is its prefix-cache
    hit at first admission (vLLM's ``usage.prompt_tokens_details.cached_tokens``)."""

    request_id: str
    status: Literal["waiting", "running"]
    num_prompt_tokens: int
    num_computed_tokens: int
    num_output_tokens: int
    max_tokens: int
    num_cached_prompt_tokens: int
    num_preemptions: int
    num_blocks: int
    lora: str | None
