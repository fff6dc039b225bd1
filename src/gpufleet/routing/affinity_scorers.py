"""Affinity scorers: prefer the replica that already holds what the request needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from gpufleet.routing.base import STRICT_PARAMS
from gpufleet.routing.load_scorers import load_of
from gpufleet.routing.prefix_index import CHARS_PER_TOKEN, PrefixIndex, prefix_hashes
from gpufleet.types import EndpointView, RouteRequest


@dataclass
class PrefixAffinityScorer:
    """Longest cached prompt prefix, as predicted by a bounded ``PrefixIndex``.

    score = matched blocks / prompt blocks. Load guard: a candidate whose load
    exceeds the least-loaded candidate's by more than
    ``max(load_margin, load_margin_ratio × least load)`` scores 0, so a hot
    prefix cannot flood one replica. Lifecycle: ``on_dispatch`` records the
    chosen replica's new blocks; ``on_complete`` corrects with the engine's
    reported ``cached_tokens``.
    """

    block_chars: int = 256
    max_blocks: int = 256
    load_margin: float = 4.0
    load_margin_ratio: float = 0.25
    index_capacity: int = 16384
    name: str = "prefix-affinity-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS
    uses_prompt_text: ClassVar[bool] = True
    index: PrefixIndex = field(init=False, repr=False)
    _last: tuple[RouteRequest | None, tuple[int, ...]] = field(
        default=(None, ()), init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.block_chars < 16 or self.max_blocks < 1 or self.index_capacity < 1:
            raise ValueError("block_chars >= 16, max_blocks >= 1 and index_capacity >= 1")
        self.index = PrefixIndex(default_capacity=self.index_capacity)

    def keys(self, request: RouteRequest) -> tuple[int, ...]:
        """The request's block keys (computed once per request)."""
        last_request, keys = self._last
        if last_request is request:
            return keys
        seed = f"{request.model}\x00{request.adapter or ''}"
        keys = prefix_hashes(request.prompt_text, seed, self.block_chars, self.max_blocks)
        self._last = (request, keys)
        return keys

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        keys = self.keys(request)
        if not keys:
            return [0.0] * len(endpoints)
        loads = [load_of(e) for e in endpoints]
        least = min(loads)
        limit = least + max(self.load_margin, self.load_margin_ratio * least)
        total = len(keys)
        index = self.index
        return [
            index.match(e.id, keys) / total if load <= limit else 0.0
            for e, load in zip(endpoints, loads, strict=True)
        ]

    def predicted_blocks(self, request: RouteRequest, endpoint: EndpointView) -> int:
        return self.index.match(endpoint.id, self.keys(request))

    def on_dispatch(self, request: RouteRequest, endpoint: EndpointView) -> None:
        keys = self.keys(request)
        if keys:
            tokens_per_block = self.block_chars // CHARS_PER_TOKEN
            capacity = endpoint.kv_capacity_tokens // tokens_per_block or None
            self.index.record_dispatch(endpoint.id, keys, capacity)

    def on_complete(
        self,
        request: RouteRequest,
        endpoint: EndpointView,
        predicted_blocks: int,
        cached_tokens: int,
    ) -> None:
        tokens_per_block = self.block_chars // CHARS_PER_TOKEN
        cached_blocks = cached_tokens // tokens_per_block
        self.index.record_cached(endpoint.id, self.keys(request), predicted_blocks, cached_blocks)


@dataclass
class LoraAffinityScorer:
    """LoRA adapter placement: loaded (1) > room to load it (``load_score``) > must wait (0).

    Requests without an adapter score 1 everywhere.
    """

    load_score: float = 0.5
    name: str = "lora-affinity-scorer"
    __pydantic_config__: ClassVar[dict[str, str]] = STRICT_PARAMS

    def score(self, request: RouteRequest, endpoints: Sequence[EndpointView]) -> list[float]:
        adapter = request.adapter
        if adapter is None:
            return [1.0] * len(endpoints)
        scores = []
        for endpoint in endpoints:
            running = endpoint.running_adapters
            if adapter in running:
                scores.append(1.0)
            elif endpoint.max_loras == 0 or len(running) < endpoint.max_loras:
                scores.append(self.load_score)
            else:
                scores.append(0.0)
        return scores
