"""What a client hands the engine model: a prompt (token ids or a compact stand-in) and limits.

Contract: requests are immutable values. A prompt is either explicit token ids
or a `SyntheticPrompt`, a compact description for simulated workloads whose
token ids are a pure function of (segment seed, position) and are never
materialised by the engine. Output tokens are synthetic too: output token ``i``
of request ``r`` is a fixed function of ``(r.request_id, i)``, so the outputs of
two different requests never share KV-cache blocks, and a preempted request
recomputes exactly the tokens it had.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

_MIX = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def synthetic_token_id(seed: int, index: int, vocab_size: int) -> int:
    """Token id at ``index`` of a synthetic segment with ``seed`` (a 64-bit mix, mod vocab)."""
    x = ((seed * _MIX) ^ (index + 0x632BE59BD9B4E019)) & _MASK64
    x = ((x ^ (x >> 31)) * 0xBF58476D1CE4E5B9) & _MASK64
    return (x ^ (x >> 29)) % vocab_size


@dataclass(frozen=True)
class SyntheticPrompt:
    """A prompt made of segments ``(seed, num_tokens)``; token ``i`` of a segment is
    ``synthetic_token_id(seed, i, vocab)``.

    Two prompts agree on a token position exactly when they have the same
    segments up to it (same seed at the same offset within the segment), so a
    shared system prompt is one shared leading segment. Block hashing uses
    `block_piece`, which costs O(segments) per block, not per token.

    ``unique_from``: the workload's promise that no other request's prompt has the
    same tokens up to any position from this one on (its segments from there are
    its own). The engine then keeps the blocks from there on private — no hash, no
    prefix-cache entry, O(1) work (`KvBlockPool`) — which is exact: no lookup could
    hit them. None: no promise.
    """

    segments: tuple[tuple[int, int], ...]
    unique_from: int | None = None
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.segments:
            raise ValueError("a synthetic prompt needs at least one segment")
        starts: list[int] = []
        total = 0
        for _seed, num_tokens in self.segments:
            if num_tokens <= 0:
                raise ValueError("synthetic prompt segments must hold at least one token")
            starts.append(total)
            total += num_tokens
        if self.unique_from is not None and not 0 <= self.unique_from <= total:
            raise ValueError("unique_from must lie within the prompt")
        object.__setattr__(self, "_starts", tuple(starts))

    @property
    def num_tokens(self) -> int:
        """Prompt length in tokens."""
        return self._starts[-1] + self.segments[-1][1]

    def block_piece(self, lo: int, hi: int) -> tuple[tuple[int, int, int], ...]:
        """Canonical key of tokens ``[lo, hi)``: ``(seed, start, stop)`` per overlapped
        segment, offsets relative to the segment. Equal keys ⇔ equal token ids."""
        pieces: list[tuple[int, int, int]] = []
        index = bisect_right(self._starts, lo) - 1
        while lo < hi:
            seed, num_tokens = self.segments[index]
            start = self._starts[index]
            stop = min(hi, start + num_tokens)
            pieces.append((seed, lo - start, stop - start))
            lo = stop
            index += 1
        return tuple(pieces)

    def block_pieces(self, lo: int, num_blocks: int, block_size: int) -> list[object]:
        """``block_piece`` of ``num_blocks`` consecutive blocks from ``lo`` (equal keys),
        with O(1) work per block that lies within one segment.

        Precondition: ``lo + num_blocks · block_size ≤ num_tokens``."""
        segments, starts = self.segments, self._starts
        index = bisect_right(starts, lo) - 1
        last = len(segments) - 1
        seed, num_tokens = segments[index]
        start = starts[index]
        stop = start + num_tokens
        pieces: list[object] = []
        append = pieces.append
        for _ in range(num_blocks):
            hi = lo + block_size
            if hi <= stop:
                append(((seed, lo - start, hi - start),))
            else:
                append(self.block_piece(lo, hi))
            lo = hi
            if lo >= stop and index < last:
                index = bisect_right(starts, lo) - 1
                seed, num_tokens = segments[index]
                start = starts[index]
                stop = start + num_tokens
        return pieces

    def token_ids(self, vocab_size: int) -> tuple[int, ...]:
        """Materialise the token ids (for tests and debugging; O(tokens))."""
        return tuple(
            synthetic_token_id(seed, i, vocab_size)
            for seed, num_tokens in self.segments
            for i in range(num_tokens)
        )


PromptTokens = tuple[int, ...] | SyntheticPrompt
"""Explicit prompt token ids, or a compact synthetic prompt."""


@dataclass(frozen=True)
class EngineRequest:
    """One generation request. The engine produces exactly ``max_tokens`` output
    tokens (the model has no stop strings or EOS). ``lora`` names an adapter;
    ``cache_salt`` isolates its prefix-cache entries like vLLM's ``cache_salt``.
    The prompt is left out of the repr."""

    request_id: str
    prompt_token_ids: PromptTokens = field(repr=False)
    max_tokens: int
    arrival_s: float = 0.0
    lora: str | None = None
    cache_salt: str | None = None

    def __post_init__(self) -> None:
        if self.max_tokens <= 0:
            raise ValueError(f"request {self.request_id}: max_tokens must be positive")
        if self.num_prompt_tokens <= 0:
            raise ValueError(f"request {self.request_id}: empty prompt")

    @property
    def num_prompt_tokens(self) -> int:
        """Prompt length in tokens."""
        prompt = self.prompt_token_ids
        return prompt.num_tokens if isinstance(prompt, SyntheticPrompt) else len(prompt)
