"""The engine model's mutable per-request state (internal; snapshots are `RequestProgress`).

Token accounting follows vLLM's ``Request``: ``num_tokens`` = prompt + output
tokens known so far, ``num_computed_tokens`` = tokens whose KV is in the cache.
A step schedules ``num_tokens − num_computed_tokens`` (capped by the budget);
when a step brings ``num_computed_tokens`` up to ``num_tokens`` a token is
sampled, so in steady decode ``num_computed_tokens == num_tokens − 1``.

Block hashes form a chain: ``h[j] = hash((h[j−1], key of block j's tokens))``
with ``h[−1]`` a root derived from the extra keys (LoRA adapter, cache salt).
A block's key is its prompt token ids (a tuple slice, or a `SyntheticPrompt`
piece) and/or ``(request_id, first output index)`` for its output tokens, so
hashing costs O(1) per block and nothing per token. Hashes use Python's
``hash`` (64-bit, process-local): collisions are possible in principle and
would show up as a false prefix hit; they are not checked.
"""

from __future__ import annotations

from typing import Literal

from gpufleet.engine.request import EngineRequest, SyntheticPrompt

SequenceStatus = Literal["waiting", "running"]

NO_PRIVATE = 1 << 62
"""``first_private`` of a request without private blocks."""


class SequenceState:
    """Mutable scheduling state of one live request. Slotted; hot-loop fields are
    plain attributes read and written by `EngineModel.step` directly.

    ``event_at``: the smallest ``end`` (num_computed + new tokens) at which a step
    must leave the fast path — to allocate a block (``end`` past the allocated
    capacity) or to cache a block that becomes full.

    Blocks from ``first_private`` on are private (`KvBlockPool`): counted in
    ``num_private``, not in ``block_ids``, never hashed. A request has private blocks
    when its prompt promises ``unique_from``, until it is first preempted (its blocks
    then get ids and hashes, as its own lookups will need them); else
    ``first_private`` is `NO_PRIVATE`.
    """

    __slots__ = (
        "block_hashes",
        "block_ids",
        "event_at",
        "first_private",
        "lora",
        "max_tokens",
        "num_cached_blocks",
        "num_cached_prompt_tokens",
        "num_computed_tokens",
        "num_output_tokens",
        "num_preemptions",
        "num_private",
        "num_prompt_tokens",
        "num_tokens",
        "prompt",
        "request",
        "request_id",
        "root_hash",
        "spec_credit",
        "status",
    )

    def __init__(self, request: EngineRequest) -> None:
        self.request = request
        self.request_id = request.request_id
        self.prompt = request.prompt_token_ids
        self.num_prompt_tokens = request.num_prompt_tokens
        self.max_tokens = request.max_tokens
        self.lora = request.lora
        self.num_tokens = self.num_prompt_tokens
        self.num_computed_tokens = 0
        self.num_output_tokens = 0
        self.num_cached_prompt_tokens = 0
        self.num_preemptions = 0
        self.block_ids: list[int] = []
        self.block_hashes: list[int] = []
        self.num_cached_blocks = 0
        self.first_private = NO_PRIVATE
        self.num_private = 0
        self.event_at = 1
        self.spec_credit = 0.0
        self.status: SequenceStatus = "waiting"
        self.root_hash = hash(("gpufleet-kv", request.lora, request.cache_salt))

    @property
    def num_blocks(self) -> int:
        """Blocks held: with ids, then private."""
        return len(self.block_ids) + self.num_private

    def next_event(self, block_size: int) -> int:
        """``event_at`` once ``num_cached_blocks`` are cached: the next allocation, or
        the next block to cache when it is not private."""
        capacity = self.num_blocks * block_size + 1
        num_cached = self.num_cached_blocks
        if num_cached >= self.first_private:
            return capacity
        return min(capacity, (num_cached + 1) * block_size)

    def extend_block_hashes(self, num_blocks: int, block_size: int) -> None:
        """Make ``block_hashes`` cover the first ``num_blocks`` full blocks.

        Precondition: those blocks' tokens are known
        (``num_blocks × block_size ≤ num_tokens``)."""
        hashes = self.block_hashes
        index = len(hashes)
        if index >= num_blocks:
            return
        parent = hashes[-1] if hashes else self.root_hash
        append = hashes.append
        num_prompt_blocks = min(num_blocks, self.num_prompt_tokens // block_size)
        if index < num_prompt_blocks:
            # Whole prompt blocks in one batch: the keys `_block_key` would build.
            prompt, lo = self.prompt, index * block_size
            if isinstance(prompt, SyntheticPrompt):
                keys = prompt.block_pieces(lo, num_prompt_blocks - index, block_size)
            else:
                keys = [
                    prompt[at : at + block_size]
                    for at in range(lo, num_prompt_blocks * block_size, block_size)
                ]
            for key in keys:
                parent = hash((parent, key))
                append(parent)
            index = num_prompt_blocks
        for block in range(index, num_blocks):
            lo = block * block_size
            parent = hash((parent, self._block_key(lo, lo + block_size)))
            append(parent)

    def _block_key(self, lo: int, hi: int) -> object:
        num_prompt = self.num_prompt_tokens
        if lo >= num_prompt:
            return (self.request_id, lo - num_prompt)
        prompt_part = self._prompt_piece(lo, min(hi, num_prompt))
        if hi <= num_prompt:
            return prompt_part
        return (prompt_part, self.request_id, hi - num_prompt)

    def _prompt_piece(self, lo: int, hi: int) -> object:
        prompt = self.prompt
        if isinstance(prompt, SyntheticPrompt):
            return prompt.block_piece(lo, hi)
        return prompt[lo:hi]
