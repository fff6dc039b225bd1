"""Paged KV-cache blocks with vLLM V1's prefix cache.

Contract (mirrors vLLM's ``BlockPool`` / ``FreeKVCacheBlockQueue``):

- Block ids are ``0 .. num_gpu_blocks − 1``; block 0 is the null block and is
  never handed out, so ``num_gpu_blocks − 1`` blocks are usable.
- Each block has a reference count (requests holding it). A block with count 0
  sits in the free queue, an LRU ordered by when it was freed; allocation pops
  the least recently freed. A free block may still be *cached*: it keeps its
  hash until it is reallocated (evicted), and a prefix hit can revive it.
  Cached-but-unreferenced blocks therefore count as free.
- Only full blocks are cached, under their chained block hash; when two blocks
  get the same hash the first one stays the cached copy.
- `free` releases a request's blocks tail-first, so its deepest blocks are
  evicted before its shared prefix.

All operations are O(blocks touched); the free queue is the never-used blocks
``next_fresh .. num_gpu_blocks − 1`` (a counter: they were queued first, in id
order, and hold no hash, so nothing can revive them) followed by an
``OrderedDict`` of freed blocks used as an ordered set (O(1) pop-oldest,
append and remove-from-middle). Construction is O(1) in the number of blocks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class KvBlockPool:
    """The block table of one engine replica. Mutable; owned by one `EngineModel`."""

    __slots__ = (
        "_block_hash",
        "_cached",
        "_free",
        "_next_fresh",
        "_ref_count",
        "enable_caching",
        "num_gpu_blocks",
    )

    def __init__(self, num_gpu_blocks: int, enable_caching: bool = True) -> None:
        if num_gpu_blocks < 2:
            raise ValueError("need at least 2 KV blocks (one is the reserved null block)")
        self.num_gpu_blocks = num_gpu_blocks
        self.enable_caching = enable_caching
        self._ref_count = [0] * num_gpu_blocks
        self._block_hash: list[int | None] = [None] * num_gpu_blocks
        self._cached: dict[int, int] = {}
        self._next_fresh = 1
        self._free: OrderedDict[int, None] = OrderedDict()

    @property
    def num_free_blocks(self) -> int:
        """Blocks no request holds (cached or not)."""
        return self.num_gpu_blocks - self._next_fresh + len(self._free)

    @property
    def usage(self) -> float:
        """vLLM's ``kv_cache_usage_perc``: ``1 − free / (num_gpu_blocks − 1)``, in [0, 1]."""
        num_free = self.num_gpu_blocks - self._next_fresh + len(self._free)
        return 1.0 - num_free / (self.num_gpu_blocks - 1)

    def free_queue(self) -> list[int]:
        """The free blocks, least recently freed first (for tests; O(blocks))."""
        return [*range(self._next_fresh, self.num_gpu_blocks), *self._free]

    @property
    def num_cached_blocks(self) -> int:
        """Blocks currently registered in the prefix cache (held or free)."""
        return len(self._cached)

    def cached_prefix(self, block_hashes: Sequence[int], max_blocks: int) -> list[int]:
        """Block ids of the longest cached prefix of ``block_hashes[:max_blocks]``."""
        hits: list[int] = []
        if not self.enable_caching:
            return hits
        cached = self._cached
        for block_hash in block_hashes[:max_blocks]:
            block = cached.get(block_hash)
            if block is None:
                break
            hits.append(block)
        return hits

    def num_free_among(self, blocks: Sequence[int]) -> int:
        """How many of ``blocks`` are in the free queue (taking them costs free blocks)."""
        ref_count = self._ref_count
        return sum(1 for b in blocks if ref_count[b] == 0)

    def touch(self, blocks: Sequence[int]) -> None:
        """Take a reference on cached blocks (a prefix hit), reviving free ones."""
        ref_count, free = self._ref_count, self._free
        for block in blocks:
            if ref_count[block] == 0:
                del free[block]
            ref_count[block] += 1

    def allocate(self, num_blocks: int) -> list[int]:
        """Pop ``num_blocks`` least recently freed blocks, evicting their cache entries.

        Precondition: ``num_blocks ≤ num_free_blocks`` (checked by the caller)."""
        free, ref_count, block_hash, cached = (
            self._free,
            self._ref_count,
            self._block_hash,
            self._cached,
        )
        fresh = self._next_fresh
        num_fresh = min(num_blocks, self.num_gpu_blocks - fresh)
        blocks = list(range(fresh, fresh + num_fresh))
        if num_fresh:
            self._next_fresh = fresh + num_fresh
            for block in blocks:
                ref_count[block] = 1
        for _ in range(num_blocks - num_fresh):
            block, _none = free.popitem(last=False)
            old_hash = block_hash[block]
            if old_hash is not None:
                block_hash[block] = None
                if cached.get(old_hash) == block:
                    del cached[old_hash]
            ref_count[block] = 1
            blocks.append(block)
        return blocks

    def cache_block(self, block: int, block_hash: int) -> None:
        """Register a full block under its hash (no-op if caching is off or the hash is taken)."""
        if self.enable_caching and block_hash not in self._cached:
            self._cached[block_hash] = block
            self._block_hash[block] = block_hash

    def cache_blocks(
        self, blocks: Sequence[int], block_hashes: Sequence[int], start: int, stop: int
    ) -> None:
        """`cache_block` for ``blocks[i]`` under ``block_hashes[i]``, i in [start, stop)."""
        if not self.enable_caching:
            return
        cached, block_hash = self._cached, self._block_hash
        for index in range(start, stop):
            key = block_hashes[index]
            if key not in cached:
                block = blocks[index]
                cached[key] = block
                block_hash[block] = key

    def free(self, blocks: Sequence[int]) -> None:
        """Drop one reference per block, tail-first; unreferenced blocks join the free queue."""
        ref_count, free = self._ref_count, self._free
        for block in reversed(blocks):
            count = ref_count[block] - 1
            ref_count[block] = count
            if count == 0:
                free[block] = None

    def ref_count(self, block: int) -> int:
        """References held on ``block`` (for invariant checks)."""
        return self._ref_count[block]

    def is_cached(self, block_hash: int) -> bool:
        """Whether a block with this hash is in the prefix cache."""
        return block_hash in self._cached
