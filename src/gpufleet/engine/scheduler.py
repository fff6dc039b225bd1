"""The step algorithm of the engine model: vLLM V1's scheduler over paged KV blocks.

Scheduling algorithm of `Scheduler.step` (vLLM V1 ``Scheduler.schedule``,
FCFS, chunked prefill and prefix caching on):

1. Running requests, in order, while token budget remains: each is given
   ``num_tokens − num_computed_tokens`` new tokens (with speculative decoding a
   decode verifies 1 + k), capped by the remaining budget. If its KV blocks
   cannot be allocated, the newest running request is preempted — blocks
   freed, computed tokens reset to 0, put at the front of ``waiting`` — until
   they can; if the request itself is the one preempted, scheduling of running
   requests stops.
2. Only if nothing was preempted in this step: admit from the front of
   ``waiting`` while budget remains and fewer than ``max_num_seqs`` run. A
   request first takes its prefix-cache hit (whole cached blocks, at most
   ``num_tokens − 1`` tokens), then as many new tokens as the budget allows.
   If its blocks cannot be allocated, admission stops (head-of-line, no
   skipping). A request whose LoRA adapter cannot join the batch is skipped
   and stays at the front.
3. The step executes: every request whose computed tokens reach its known
   tokens samples one token (a decode, or the end of a prefill); requests at
   ``max_tokens`` finish and free their blocks (after admission, as in vLLM,
   so their slots and blocks are reused from the next step).
4. The step lasts ``latency.step_time_s(shape)`` for the aggregate `StepShape`,
   plus the speculative drafter's cost, plus ``lora_load_s`` per adapter the
   batch had to load.

Full blocks are hashed and cached when they are allocated for (as vLLM's
``allocate_slots`` does), so a request admitted later in the same step can hit
them. Steady decode is a fast path: per running request a handful of integer
operations; block work happens only when a request's tokens cross a block
boundary (``SequenceState.event_at``).
"""

from __future__ import annotations

from collections import deque

from gpufleet.engine.config import EngineConfig
from gpufleet.engine.kv_cache import KvBlockPool
from gpufleet.engine.latency import LatencyModel, StepShape
from gpufleet.engine.lora import LoraSlots
from gpufleet.engine.request import SyntheticPrompt
from gpufleet.engine.sequence import NO_PRIVATE, SequenceState
from gpufleet.engine.step_result import StepResult


class Scheduler:
    """Queues, block pool, LoRA slots and the counters vLLM exports.

    Owned by one `EngineModel`, which validates requests before `add` and
    exposes snapshots; attributes are read by it directly.
    """

    def __init__(self, config: EngineConfig, latency: LatencyModel) -> None:
        self.config = config
        self._latency = latency
        self._block_size = config.block_size
        self._caching = config.enable_prefix_caching
        self.pool = KvBlockPool(config.num_gpu_blocks, config.enable_prefix_caching)
        self.waiting: deque[SequenceState] = deque()
        self.running: list[SequenceState] = []
        self.lora = LoraSlots(config.max_loras)
        spec = config.speculative
        self._spec_k = spec.num_draft_tokens if spec else 0
        self._spec_expected = (
            tuple(spec.expected_tokens(n) for n in range(self._spec_k + 2)) if spec else ()
        )
        self.num_steps = 0
        self.num_preemptions = 0
        self.num_finished = 0
        self.num_prompt_tokens = 0
        self.num_generation_tokens = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.preempted_prefix_queries = 0
        self.preempted_prefix_hits = 0

    def add(self, seq: SequenceState) -> None:
        """Queue a new request at the back of ``waiting`` (its blocks from its prompt's
        ``unique_from`` on will be private)."""
        prompt = seq.prompt
        if isinstance(prompt, SyntheticPrompt) and prompt.unique_from is not None:
            seq.first_private = prompt.unique_from // self._block_size
        self.waiting.append(seq)

    def remove(self, seq: SequenceState) -> None:
        """Drop a live request (abort), freeing its blocks if it runs."""
        if seq.status == "running":
            self.running.remove(seq)
            self._release(seq)
        else:
            self.waiting.remove(seq)

    def step(self, now_s: float) -> StepResult:
        """Schedule and execute one step starting at ``now_s`` (module docstring)."""
        running = self.running
        budget = self.config.max_num_batched_tokens
        spec_k = self._spec_k
        advanced: list[tuple[str, int, int]] = []
        first: list[str] = []
        finished: list[SequenceState] = []
        preempted: list[SequenceState] = []
        num_decodes = decode_context = 0
        num_prefill = num_spec_tokens = num_spec_seqs = spec_context = 0
        pairs = kv_read = num_emitted = 0
        i = 0
        while i < len(running) and budget > 0:
            seq = running[i]
            computed = seq.num_computed_tokens
            remaining = seq.num_tokens - computed
            if remaining == 1 and not spec_k:
                # Fast path: a plain decode of one token.
                end = computed + 1
                if end >= seq.event_at and not self._reserve(seq, end, preempted):
                    break
                seq.num_computed_tokens = end
                seq.num_tokens = end + 1
                out = seq.num_output_tokens + 1
                seq.num_output_tokens = out
                budget -= 1
                num_decodes += 1
                decode_context += end
                advanced.append((seq.request_id, 1, 1))
                if out == 1:
                    first.append(seq.request_id)
                    self.num_prompt_tokens += seq.num_prompt_tokens
                if out >= seq.max_tokens:
                    finished.append(seq)
                i += 1
                continue
            # A speculative decode verifies the sampled token plus k drafts; drafts
            # exist only once a token was sampled (not for a 1-token prefill rest).
            spec_decode = remaining == 1 and seq.num_output_tokens > 0
            if spec_decode:
                num_new = spec_k + 1 if spec_k < budget else budget
            else:
                num_new = remaining if remaining <= budget else budget
            end = computed + num_new
            if end >= seq.event_at and not self._reserve(seq, end, preempted):
                break
            budget -= num_new
            pairs += num_new * computed + num_new * (num_new + 1) // 2
            kv_read += end
            if spec_decode:
                emitted = self._accept_drafts(seq, num_new)
                num_spec_tokens += num_new
                num_spec_seqs += 1
                spec_context += end
            else:
                seq.num_computed_tokens = end
                num_prefill += num_new
                emitted = 0
                if end == seq.num_tokens:
                    seq.num_tokens = end + 1
                    emitted = 1
            num_emitted += emitted
            advanced.append((seq.request_id, num_new, emitted))
            if emitted:
                self._after_emit(seq, emitted, first, finished)
            i += 1

        admitted: list[str] = []
        cached: list[tuple[str, int]] = []
        if not preempted and self.waiting:
            budget, admitted_prefill, admitted_pairs, admitted_kv, admitted_emitted = self._admit(
                budget, advanced, admitted, cached, first, finished
            )
            num_prefill += admitted_prefill
            pairs += admitted_pairs
            kv_read += admitted_kv
            num_emitted += admitted_emitted
        loaded: tuple[str, ...] = ()
        if self.config.max_loras:
            loaded = self.lora.load_for_batch(set(self.lora.running_adapters()))
        if finished:
            self._finish(finished)

        shape = StepShape(
            num_prefill_tokens=num_prefill,
            num_decode_tokens=num_decodes + num_spec_tokens,
            num_decode_seqs=num_decodes + num_spec_seqs,
            num_attention_pairs=pairs + decode_context,
            num_kv_read_tokens=kv_read + decode_context,
        )
        latency = self._latency
        duration_s = latency.step_time_s(shape)
        if num_spec_seqs and self.config.speculative is not None:
            draft_shape = StepShape(
                num_decode_tokens=num_spec_seqs,
                num_decode_seqs=num_spec_seqs,
                num_attention_pairs=spec_context,
                num_kv_read_tokens=spec_context,
            )
            ratio = spec_k * self.config.speculative.draft_cost_ratio
            duration_s += ratio * latency.step_time_s(draft_shape)
        duration_s += len(loaded) * self.config.lora_load_s
        num_generated = num_decodes + num_emitted
        self.num_generation_tokens += num_generated
        self.num_steps += 1
        return StepResult(
            start_s=now_s,
            duration_s=duration_s,
            advanced=tuple(advanced),
            admitted_ids=tuple(admitted),
            cached_prompt_tokens=tuple(cached),
            first_token_ids=tuple(first),
            finished_ids=tuple(s.request_id for s in finished),
            preempted_ids=tuple(s.request_id for s in preempted),
            loaded_loras=loaded,
            num_scheduled_tokens=self.config.max_num_batched_tokens - budget,
            num_prefill_tokens=num_prefill,
            num_generated_tokens=num_generated,
        )

    # -- step helpers ---------------------------------------------------------

    def _admit(
        self,
        budget: int,
        advanced: list[tuple[str, int, int]],
        admitted: list[str],
        cached: list[tuple[str, int]],
        first: list[str],
        finished: list[SequenceState],
    ) -> tuple[int, int, int, int, int]:
        """Step 2 of the algorithm; returns (budget left, prefill tokens, attention
        pairs, KV tokens read, tokens emitted)."""
        waiting, running, pool = self.waiting, self.running, self.pool
        block_size = self._block_size
        max_num_seqs = self.config.max_num_seqs
        lora = self.lora
        active_loras = set(lora.running_adapters()) if self.config.max_loras else set()
        skipped: list[SequenceState] = []
        num_prefill = pairs = kv_read = num_emitted = 0
        while waiting and budget > 0 and len(running) < max_num_seqs:
            seq = waiting[0]
            if seq.lora is not None and not lora.can_join(seq.lora, active_loras):
                skipped.append(waiting.popleft())
                continue
            hits = self.prefix_hits_of(seq)
            num_hit_tokens = len(hits) * block_size
            num_new = seq.num_tokens - num_hit_tokens
            if num_new > budget:
                num_new = budget
            end = num_hit_tokens + num_new
            num_blocks = -(-end // block_size)
            if num_blocks - len(hits) + pool.num_free_among(hits) > pool.num_free_blocks:
                break
            waiting.popleft()
            pool.touch(hits)
            seq.num_cached_blocks = len(hits)
            seq.block_ids = hits  # grown in place: ``hits`` is not read again
            self._grow(seq, num_blocks)
            seq.status = "running"
            running.append(seq)
            if seq.lora is not None:
                active_loras.add(seq.lora)
                lora.add_running(seq.lora)
            if seq.num_preemptions:
                self.preempted_prefix_queries += seq.num_tokens
                self.preempted_prefix_hits += num_hit_tokens
            else:
                self.prefix_queries += seq.num_tokens
                self.prefix_hits += num_hit_tokens
                seq.num_cached_prompt_tokens = num_hit_tokens
                cached.append((seq.request_id, num_hit_tokens))
            self._cache_full_blocks(seq, end)
            seq.num_computed_tokens = end
            budget -= num_new
            num_prefill += num_new
            pairs += num_new * num_hit_tokens + num_new * (num_new + 1) // 2
            kv_read += end
            emitted = 0
            if end == seq.num_tokens:
                seq.num_tokens = end + 1
                emitted = 1
                self._after_emit(seq, 1, first, finished)
            num_emitted += emitted
            advanced.append((seq.request_id, num_new, emitted))
            admitted.append(seq.request_id)
        if skipped:
            waiting.extendleft(reversed(skipped))
        return budget, num_prefill, pairs, kv_read, num_emitted

    def prefix_hits_of(self, seq: SequenceState) -> list[int]:
        """The cached blocks a waiting request would take on admission: its longest
        cached prefix, at most ``num_tokens − 1`` tokens, none of its private blocks
        (no lookup could hit them)."""
        if not self._caching:
            return []
        block_size = self._block_size
        max_hit_blocks = min((seq.num_tokens - 1) // block_size, seq.first_private)
        if len(seq.block_hashes) < max_hit_blocks:
            seq.extend_block_hashes(max_hit_blocks, block_size)
        return self.pool.cached_prefix(seq.block_hashes, max_hit_blocks)

    def _accept_drafts(self, seq: SequenceState, num_verified: int) -> int:
        """Speculative decode: credit the expected accepted tokens, emit the whole part."""
        credit = seq.spec_credit + self._spec_expected[num_verified]
        accepted = int(credit)
        seq.spec_credit = credit - accepted
        accepted = min(accepted, seq.max_tokens - seq.num_output_tokens)
        seq.num_computed_tokens += accepted
        seq.num_tokens += accepted
        return accepted

    def _after_emit(
        self,
        seq: SequenceState,
        num_emitted: int,
        first: list[str],
        finished: list[SequenceState],
    ) -> None:
        out = seq.num_output_tokens
        if out == 0:
            first.append(seq.request_id)
            self.num_prompt_tokens += seq.num_prompt_tokens
        out += num_emitted
        seq.num_output_tokens = out
        if out >= seq.max_tokens:
            finished.append(seq)

    def _reserve(self, seq: SequenceState, end: int, preempted: list[SequenceState]) -> bool:
        """Allocate blocks so ``seq`` holds ``end`` tokens, preempting the newest
        running requests as needed; False when ``seq`` itself was preempted."""
        pool = self.pool
        num_blocks = -(-end // self._block_size)
        num_needed = num_blocks - seq.num_blocks
        if num_needed > 0:
            while num_needed > pool.num_free_blocks:
                victim = self.running.pop()
                self._preempt(victim)
                preempted.append(victim)
                if victim is seq:
                    return False
            self._grow(seq, num_blocks)
        self._cache_full_blocks(seq, end)
        return True

    def _grow(self, seq: SequenceState, num_blocks: int) -> None:
        """Allocate blocks so ``seq`` holds ``num_blocks``: with ids below its
        ``first_private``, private from there on (free blocks checked by the caller)."""
        num_held = seq.num_blocks
        num_with_ids = min(num_blocks, seq.first_private)
        if num_with_ids > num_held:
            seq.block_ids += self.pool.allocate(num_with_ids - num_held)
            num_held = num_with_ids
        if num_blocks > num_held:
            self.pool.allocate_private(num_blocks - num_held)
            seq.num_private += num_blocks - num_held

    def _cache_full_blocks(self, seq: SequenceState, end: int) -> None:
        """Cache the blocks ``end`` tokens fill (only known tokens), reset ``event_at``."""
        block_size = self._block_size
        if not self._caching:
            seq.event_at = seq.num_blocks * block_size + 1
            return
        num_full = min(end, seq.num_tokens) // block_size
        num_cached = seq.num_cached_blocks
        if num_full > num_cached:
            num_hashed = min(num_full, seq.first_private)  # private blocks: no hash
            if num_hashed > num_cached:
                seq.extend_block_hashes(num_hashed, block_size)
                self.pool.cache_blocks(seq.block_ids, seq.block_hashes, num_cached, num_hashed)
            seq.num_cached_blocks = num_full
        seq.event_at = seq.next_event(block_size)

    def _preempt(self, seq: SequenceState) -> None:
        if seq.num_private:
            self._unprivatise(seq)
        seq.first_private = NO_PRIVATE
        self._release(seq)
        seq.num_computed_tokens = 0
        seq.num_cached_blocks = 0
        seq.event_at = 1
        seq.status = "waiting"
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(seq)

    def _unprivatise(self, seq: SequenceState) -> None:
        """Give a request's private blocks ids, and hashes to those cached by now
        (``num_computed // block_size`` blocks in all, as every step caches its full
        blocks): once preempted, its own lookups will look for them."""
        first = seq.first_private
        seq.block_ids += self.pool.adopt_private(seq.num_private)
        seq.num_private = 0
        num_full = seq.num_computed_tokens // self._block_size
        if self._caching and num_full > first:
            seq.extend_block_hashes(num_full, self._block_size)
            self.pool.cache_blocks(seq.block_ids, seq.block_hashes, first, num_full)

    def _release(self, seq: SequenceState) -> None:
        if seq.num_private:  # the deepest blocks: freed first
            self.pool.free_private(seq.num_private)
            seq.num_private = 0
        self.pool.free(seq.block_ids)
        seq.block_ids = []
        if seq.lora is not None:
            self.lora.remove_running(seq.lora)

    def _finish(self, finished: list[SequenceState]) -> None:
        for seq in finished:
            self._release(seq)
        self.num_finished += len(finished)
        self.running = [s for s in self.running if s.num_output_tokens < s.max_tokens]
