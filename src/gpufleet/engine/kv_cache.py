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
(a counter: they were queued first, in id order, and hold no hash, so nothing
can revive them) followed by an ``OrderedDict`` of freed blocks used as an
ordered set (O(1) pop-oldest, append and remove-from-middle). Construction is
O(1) in the number of blocks.

**Private blocks** (`allocate_private`, `free_private`): blocks whose hash no
other request can produce and whose own request will never look up (its prompt
is promised unique from there on, so every later block, output included, is its
own; and it was never preempted).
No lookup can hit them, so they carry no id and no hash: the pool counts them,
and a request's freed private blocks are one *run* entry in the free queue, at
the place its blocks would have taken, evicted deepest first like the blocks it
stands for. Which cached blocks are evicted, and when, is therefore exactly what
it would be with ids (the simulator's speed depends on it: a unique prompt costs
O(1) pool work instead of O(blocks)). Ids are given to blocks only when needed:
a block taken from a run or from the never-used ones gets the next unused id or a
recycled one, so a pool that never sees a private block hands out exactly the ids
described above.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class PrivateRun:
    """Freed private blocks of one request, queued as one free-queue entry."""

    __slots__ = ("num_blocks",)

    def __init__(self, num_blocks: int) -> None:
        self.num_blocks = num_blocks


class KvBlockPool:
    """The block table of one engine replica. Mutable; owned by one `EngineModel`."""

    __slots__ = (
        "_block_hash",
        "_cached",
        "_free",
        "_next_id",
        "_num_fresh",
        "_num_queued",
        "_ref_count",
        "_spare_ids",
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
        self._num_fresh = num_gpu_blocks - 1
        """Never-used blocks, at the head of the free queue."""
        self._free: OrderedDict[int | PrivateRun, None] = OrderedDict()
        """The rest of the free queue: block ids and runs of private blocks."""
        self._num_queued = 0
        """Blocks in ``_free`` (a run counts its blocks)."""
        self._next_id = 1
        """Ids ``_next_id ..`` were never handed out."""
        self._spare_ids: list[int] = []
        """Ids handed out once and now held by no block (their block went private)."""

    @property
    def num_free_blocks(self) -> int:
        """Blocks no request holds (cached or not)."""
        return self._num_fresh + self._num_queued

    @property
    def usage(self) -> float:
        """vLLM's ``kv_cache_usage_perc``: ``1 − free / (num_gpu_blocks − 1)``, in [0, 1]."""
        num_free = self._num_fresh + self._num_queued
        return 1.0 - num_free / (self.num_gpu_blocks - 1)

    def free_queue(self) -> list[int]:
        """The free blocks, least recently freed first, a private block as -1 and a
        never-used one as the id it would get if no private block came first (for
        tests; O(blocks))."""
        queue = list(range(self._next_id, self._next_id + self._num_fresh))
        for entry in self._free:
            if isinstance(entry, PrivateRun):
                queue += [-1] * entry.num_blocks
            else:
                queue.append(entry)
        return queue

    @property
    def num_cached_blocks(self) -> int:
        """Blocks currently registered in the prefix cache (held or free; private
        blocks are never registered)."""
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
                self._num_queued -= 1
            ref_count[block] += 1

    def allocate(self, num_blocks: int) -> list[int]:
        """Pop ``num_blocks`` least recently freed blocks, evicting their cache entries;
        their ids (a block that was never used or private gets a fresh or spare id).

        Precondition: ``num_blocks ≤ num_free_blocks`` (checked by the caller)."""
        blocks: list[int] = []
        self._take(num_blocks, blocks)
        return self._hold(blocks)

    def allocate_private(self, num_blocks: int) -> None:
        """Take ``num_blocks`` least recently freed blocks as private blocks (module doc),
        evicting their cache entries: the same blocks `allocate` would take.

        Precondition: ``num_blocks ≤ num_free_blocks`` (checked by the caller)."""
        self._take(num_blocks, None)

    def _take(self, num_blocks: int, ids: list[int] | None) -> None:
        """Pop ``num_blocks`` from the head of the free queue, evicting their cache
        entries; with ``ids``, append their ids to it (minted for never-used and private
        blocks), else the blocks go private (their ids become spare)."""
        num_fresh = min(num_blocks, self._num_fresh)
        self._num_fresh -= num_fresh
        if ids is not None:
            self._mint(num_fresh, ids)
        left = num_blocks - num_fresh
        free = self._free
        while left:
            entry, _none = free.popitem(last=False)
            if isinstance(entry, PrivateRun):
                taken = self._take_from_run(entry, left)
                if ids is not None:
                    self._mint(taken, ids)
                left -= taken
                continue
            self._num_queued -= 1
            self._evict(entry)
            (self._spare_ids if ids is None else ids).append(entry)
            left -= 1

    def adopt_private(self, num_blocks: int) -> list[int]:
        """Give ids to ``num_blocks`` held private blocks (their request now needs them
        hashed: it is being preempted); the blocks stay held."""
        blocks: list[int] = []
        self._mint(num_blocks, blocks)
        return self._hold(blocks)

    def _hold(self, blocks: list[int]) -> list[int]:
        """Give the newly taken ``blocks`` their one reference; ``blocks``."""
        ref_count = self._ref_count
        for block in blocks:
            ref_count[block] = 1
        return blocks

    def free_private(self, num_blocks: int) -> None:
        """Queue a request's ``num_blocks`` private blocks (they are its deepest: free them
        before `free` of the rest); no lookup can revive them."""
        if num_blocks:
            self._free[PrivateRun(num_blocks)] = None
            self._num_queued += num_blocks

    def _take_from_run(self, run: PrivateRun, wanted: int) -> int:
        """Take up to ``wanted`` blocks of ``run``, just popped from the queue's head (the
        rest goes back there); how many were taken."""
        taken = min(wanted, run.num_blocks)
        if taken < run.num_blocks:
            run.num_blocks -= taken
            free = self._free
            free[run] = None
            free.move_to_end(run, last=False)
        self._num_queued -= taken
        return taken

    def _evict(self, block: int) -> None:
        block_hash = self._block_hash
        old_hash = block_hash[block]
        if old_hash is not None:
            block_hash[block] = None
            cached = self._cached
            if cached.get(old_hash) == block:
                del cached[old_hash]

    def _mint(self, num_blocks: int, into: list[int]) -> None:
        """Append ``num_blocks`` ids no block holds: recycled ones first (last in, first
        out), then never-used ones in order."""
        spare = self._spare_ids
        while num_blocks and spare:
            into.append(spare.pop())
            num_blocks -= 1
        if num_blocks:
            first = self._next_id
            self._next_id = first + num_blocks
            into.extend(range(first, first + num_blocks))

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
                self._num_queued += 1

    def ref_count(self, block: int) -> int:
        """References held on ``block`` (for invariant checks)."""
        return self._ref_count[block]

    def is_cached(self, block_hash: int) -> bool:
        """Whether a block with this hash is in the prefix cache."""
        return block_hash in self._cached
