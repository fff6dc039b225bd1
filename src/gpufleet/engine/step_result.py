"""What one engine step decided and how long it took (a value, like vLLM's ``SchedulerOutput``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StepResult:
    """Outcome of `EngineModel.step`.

    ``advanced`` lists every scheduled request in schedule order (running
    requests first, then those admitted this step) as
    ``(request_id, num_new_computed_tokens, num_new_output_tokens)``: a prefill
    chunk computes tokens and outputs none until its last chunk, which also
    yields the first token; a decode computes one token (k + 1 verified with
    speculative decoding) and outputs one (or the accepted count).
    ``cached_prompt_tokens`` gives, for each request admitted for the first
    time in this step, its prefix-cache hit in tokens (also available from
    `EngineModel.request_progress` while the request lives);
    ``first_token_ids`` got their first output token in this step;
    ``finished_ids`` reached ``max_tokens`` (finish reason "length") and were
    released; ``preempted_ids`` lost their KV blocks and went back to the front
    of the waiting queue (recompute), in preemption order. The step runs from
    ``start_s`` for ``duration_s`` seconds (latency model + LoRA loads + drafting).
    """

    start_s: float
    duration_s: float
    advanced: tuple[tuple[str, int, int], ...]
    admitted_ids: tuple[str, ...]
    cached_prompt_tokens: tuple[tuple[str, int], ...]
    first_token_ids: tuple[str, ...]
    finished_ids: tuple[str, ...]
    preempted_ids: tuple[str, ...]
    loaded_loras: tuple[str, ...]
    num_scheduled_tokens: int
    num_prefill_tokens: int
    num_generated_tokens: int

    @property
    def end_s(self) -> float:
        """When the step's outputs are ready."""
        return self.start_s + self.duration_s

    @property
    def is_idle(self) -> bool:
        """True when nothing was scheduled (no work, or none that fits)."""
        return not self.advanced
