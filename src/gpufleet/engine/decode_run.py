"""Many decode-only steps in one call: a planned run, applied (settled) lazily.

When LoRA and speculative decoding are off, every running request is in
steady decode (one token to compute, at least one emitted), the batch fits the
token budget and nothing waiting can be admitted (nothing waits, or the head
of the queue is blocked — see `_admission_blocked` for why it stays blocked
until a request finishes), each `Scheduler.step` is a plain decode of the
whole batch: no admission, no first tokens, and the batch composition only
changes when a request reaches ``max_tokens``. The step shape is then ``n``
decode tokens over a context that grows by ``n`` per step, so step ``j``
(0-based) lasts

    d_j = linear(n) + (Σ context + n·(j + 1)) · max(attention/pair, KV/token) + comm(n) + fixed

(`RooflineLatency.decode_terms`, the very float operations of ``step_time_s``
in the same order, so the step start times are bit-identical to stepping one
at a time).

`plan` computes ``K`` = steps until the first request finishes (inclusive),
cut before the first step whose block allocations could not be served from
the free blocks (that step may preempt: it is left to `Scheduler.step`), and
the K step start times; it changes no state. `settle(plan, now_s)` applies the
steps that start at or before ``now_s`` — exactly what calling ``step`` at each
of those start times would have done: blocks are allocated in the same global
order (by step, then by running order), full blocks are hashed and cached,
counters advance, and a request reaching ``max_tokens`` in the last planned
step is finished and released. Cost: O(batch + steps + blocks allocated) per
run instead of O(batch) per step.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gpufleet.engine.kv_cache import KvBlockPool
    from gpufleet.engine.scheduler import Scheduler
    from gpufleet.engine.sequence import SequenceState


class DecodeLatency(Protocol):
    """A latency model whose decode steps are linear in the batch's context."""

    def decode_terms(self, num_seqs: int) -> tuple[float, float, float, float]:
        """``(linear, seconds per context token, comm, fixed)`` of a decode of
        ``num_seqs`` sequences: ``step = linear + context·per_token + comm + fixed``."""
        ...


class DecodePlan:
    """A planned run of decode-only steps (internal to the engine model)."""

    __slots__ = ("end_s", "finishes", "first_alloc", "running", "starts")

    def __init__(
        self,
        running: list[SequenceState],
        first_alloc: list[int],
        starts: list[float],
        end_s: float,
        finishes: bool,
    ) -> None:
        self.running = running
        self.first_alloc = first_alloc
        self.starts = starts
        self.end_s = end_s
        self.finishes = finishes

    def num_started(self, now_s: float) -> int:
        """Planned steps that start at or before ``now_s``."""
        return bisect_right(self.starts, now_s)

    def end_of(self, num_steps: int) -> float:
        """When the ``num_steps``-th step ends (the next step's start)."""
        starts = self.starts
        return starts[num_steps] if num_steps < len(starts) else self.end_s

    def num_allocated(self, num_steps: int, block_size: int) -> int:
        """Blocks the first ``num_steps`` steps allocate."""
        total = 0
        for first in self.first_alloc:
            if num_steps > first:
                total += (num_steps - 1 - first) // block_size + 1
        return total


def plan(
    scheduler: Scheduler, latency: DecodeLatency, now_s: float, max_steps: int
) -> DecodePlan | None:
    """Plan a decode run from ``now_s`` (module doc); None when the next step is not one."""
    running = scheduler.running
    num_seqs = len(running)
    if (
        not num_seqs
        or num_seqs > scheduler.config.max_num_batched_tokens
        or scheduler.config.max_loras
        or scheduler.config.speculative is not None
        or (scheduler.waiting and not _admission_blocked(scheduler, num_seqs))
    ):
        return None
    block_size = scheduler.config.block_size
    min_left = max_steps + 1
    context = 0
    first_alloc: list[int] = []
    for seq in running:
        computed = seq.num_computed_tokens
        out = seq.num_output_tokens
        if seq.num_tokens - computed != 1 or not out:
            return None
        left = seq.max_tokens - out
        if left < min_left:
            min_left = left
        context += computed
        # Step j decodes up to end = computed + 1 + j; it needs a block once end > capacity.
        first_alloc.append(seq.num_blocks * block_size - computed)
    finishes = min_left <= max_steps  # the last planned step finishes a request
    num_steps = min_left if finishes else max_steps
    num_free = scheduler.pool.num_free_blocks
    needed = 0
    for first in first_alloc:
        if num_steps > first:
            needed += (num_steps - 1 - first) // block_size + 1
    if needed > num_free:
        num_steps = _last_safe_step(first_alloc, num_steps, num_free, block_size)
        finishes = False
        if not num_steps:
            return None
    linear, per_token, comm, fixed = latency.decode_terms(num_seqs)
    starts: list[float] = []
    append = starts.append
    t = now_s
    context += num_seqs
    for _ in range(num_steps):
        append(t)
        t = t + (linear + context * per_token + comm + fixed)
        context += num_seqs
    return DecodePlan(list(running), first_alloc, starts, t, finishes)


def _admission_blocked(scheduler: Scheduler, num_seqs: int) -> bool:
    """Whether step 2 of the algorithm (admission) can take nothing now — the batch is at
    ``max_num_seqs``, its decodes use the whole token budget, or the head of ``waiting``
    needs more free blocks than there are. Then it can take nothing before a request
    finishes either: the batch and the budget do not change, and decode steps only take
    free blocks (an allocation that evicts one of the head's cached hits takes that
    free block too, so the head's shortfall never shrinks); finishes free blocks only
    after admission in their step."""
    config = scheduler.config
    budget = config.max_num_batched_tokens - num_seqs
    if budget <= 0 or num_seqs >= config.max_num_seqs:
        return True
    seq = scheduler.waiting[0]
    pool = scheduler.pool
    block_size = config.block_size
    hits = scheduler.prefix_hits_of(seq)  # the lookup `Scheduler._admit` makes
    num_hit_tokens = len(hits) * block_size
    end = num_hit_tokens + min(seq.num_tokens - num_hit_tokens, budget)
    num_new_blocks = -(-end // block_size) - len(hits)
    return num_new_blocks + pool.num_free_among(hits) > pool.num_free_blocks


def _last_safe_step(first_alloc: list[int], num_steps: int, num_free: int, block_size: int) -> int:
    """Steps that can run before one needs more blocks than are free."""
    demand: dict[int, int] = {}
    for first in first_alloc:
        for step in range(first, num_steps, block_size):
            demand[step] = demand.get(step, 0) + 1
    used = 0
    for step in sorted(demand):
        used += demand[step]
        if used > num_free:
            return step
    return num_steps


def _cache_decoded_blocks(pool: KvBlockPool, seq: SequenceState, end: int, block_size: int) -> None:
    """``Scheduler._cache_full_blocks(seq, end)`` for a decode (prefix caching on, the
    ``end`` tokens known), with output-only blocks hashed inline."""
    num_full = end // block_size
    num_cached = seq.num_cached_blocks
    num_to_hash = min(num_full, seq.first_private)  # private blocks: no hash
    if num_to_hash > num_cached:
        hashes = seq.block_hashes
        num_hashed = len(hashes)
        if num_hashed < num_to_hash:
            num_prompt = seq.num_prompt_tokens
            if num_hashed * block_size < num_prompt:
                seq.num_tokens = end
                seq.extend_block_hashes(num_to_hash, block_size)
            else:
                parent = hashes[-1] if hashes else seq.root_hash
                request_id = seq.request_id
                for lo in range(num_hashed * block_size, num_to_hash * block_size, block_size):
                    parent = hash((parent, (request_id, lo - num_prompt)))
                    hashes.append(parent)
        pool.cache_blocks(seq.block_ids, hashes, num_cached, num_to_hash)
    if num_full > num_cached:
        seq.num_cached_blocks = num_full
    seq.event_at = seq.next_event(block_size)


def _allocate(
    pool: KvBlockPool,
    running: list[SequenceState],
    first_alloc: list[int],
    num_steps: int,
    block_size: int,
) -> None:
    """The blocks the first ``num_steps`` steps allocate, in the order stepping takes them
    (by step, then running order): ids, or private blocks (a decode's new block is private
    when the request's blocks already reach ``first_private``)."""
    order = sorted(
        (step, index)
        for index, first in enumerate(first_alloc)
        if first < num_steps
        for step in range(first, num_steps, block_size)
    )
    private = [seq.first_private <= len(seq.block_ids) for seq in running]
    at = 0
    while at < len(order):  # consecutive takes of one kind in one call
        kind = private[order[at][1]]
        stop = at + 1
        while stop < len(order) and private[order[stop][1]] == kind:
            stop += 1
        if kind:
            pool.allocate_private(stop - at)
            for _, index in order[at:stop]:
                running[index].num_private += 1
        else:
            blocks = pool.allocate(stop - at)
            for (_, index), block in zip(order[at:stop], blocks, strict=True):
                running[index].block_ids.append(block)
        at = stop


def settle(scheduler: Scheduler, run: DecodePlan, now_s: float) -> tuple[int, list[str]]:
    """Apply the planned steps that start at or before ``now_s`` (module doc).

    Returns (steps applied, ids finished in the last applied step)."""
    num_steps = run.num_started(now_s)
    if not num_steps:
        return 0, []
    running = run.running
    block_size = scheduler.config.block_size
    first_alloc = run.first_alloc
    pool = scheduler.pool
    if min(first_alloc) < num_steps:
        _allocate(pool, running, first_alloc, num_steps, block_size)
    finished: list[SequenceState] = []
    caching = scheduler.config.enable_prefix_caching
    for seq in running:
        end = seq.num_computed_tokens + num_steps
        if end >= seq.event_at:
            if caching:
                _cache_decoded_blocks(pool, seq, end, block_size)
            else:
                seq.event_at = seq.num_blocks * block_size + 1
        seq.num_computed_tokens = end
        seq.num_tokens = end + 1
        out = seq.num_output_tokens + num_steps
        seq.num_output_tokens = out
        if out >= seq.max_tokens:
            finished.append(seq)
    scheduler.num_steps += num_steps
    scheduler.num_generation_tokens += len(running) * num_steps
    if finished:
        scheduler._finish(finished)
    return num_steps, [seq.request_id for seq in finished]
