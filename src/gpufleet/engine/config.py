"""Settings of one simulated engine replica (the vLLM flags that shape scheduling).

Contract: values are validated on construction (ValueError). The start-up
check mirrors vLLM's: one sequence of ``max_model_len`` tokens (plus the
speculative look-ahead) must fit in the usable blocks, which also guarantees
that the oldest running request can always make progress.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpufleet.plan.memory import KvPoolEstimate


@dataclass(frozen=True)
class SpeculativeConfig:
    """Speculative decoding with ``num_draft_tokens`` (k) drafts per step and a
    per-token acceptance rate α, in expected-value accounting: a decode step of
    a sequence verifies k + 1 tokens and yields ``(1 − α^(k+1)) / (1 − α)``
    tokens on average (credited deterministically, fractions carried over).
    Drafting costs ``k × draft_cost_ratio ×`` the target model's one-token
    decode step at the same batch (EAGLE-style drafters: ~0.05–0.1)."""

    num_draft_tokens: int
    acceptance_rate: float
    draft_cost_ratio: float = 0.1

    def __post_init__(self) -> None:
        if self.num_draft_tokens <= 0:
            raise ValueError("num_draft_tokens must be positive")
        if not 0.0 <= self.acceptance_rate <= 1.0:
            raise ValueError("acceptance_rate must be in [0, 1]")
        if self.draft_cost_ratio < 0:
            raise ValueError("draft_cost_ratio must be non-negative")

    def expected_tokens(self, num_verified_tokens: int) -> float:
        """Expected tokens accepted when verifying ``num_verified_tokens`` (= 1 + drafts)."""
        alpha = self.acceptance_rate
        if alpha >= 1.0:
            return float(num_verified_tokens)
        return (1.0 - alpha**num_verified_tokens) / (1.0 - alpha)


@dataclass(frozen=True)
class EngineConfig:
    """Scheduler and cache settings (vLLM names). ``num_gpu_blocks`` includes the
    reserved null block, as vLLM reports it. ``max_loras`` 0 disables LoRA;
    ``lora_load_s`` is added to the duration of a step that loads an adapter."""

    num_gpu_blocks: int
    max_model_len: int
    block_size: int = 16
    max_num_batched_tokens: int = 2048
    max_num_seqs: int = 256
    enable_prefix_caching: bool = True
    max_loras: int = 0
    lora_load_s: float = 0.05
    speculative: SpeculativeConfig | None = None

    def __post_init__(self) -> None:
        for name in ("max_model_len", "block_size", "max_num_batched_tokens", "max_num_seqs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_loras < 0 or self.lora_load_s < 0:
            raise ValueError("max_loras and lora_load_s must be non-negative")
        lookahead = self.speculative.num_draft_tokens if self.speculative else 0
        needed = -(-(self.max_model_len + lookahead) // self.block_size)
        if self.num_gpu_blocks - 1 < needed:
            raise ValueError(
                f"KV cache of {self.num_gpu_blocks - 1} usable blocks cannot hold one sequence "
                f"of max_model_len {self.max_model_len} ({needed} blocks of {self.block_size})"
            )

    @classmethod
    def from_kv_pool(
        cls,
        pool: KvPoolEstimate,
        *,
        enable_prefix_caching: bool = True,
        max_loras: int = 0,
        lora_load_s: float = 0.05,
        speculative: SpeculativeConfig | None = None,
    ) -> EngineConfig:
        """Settings matching a planned replica (blocks, budget, limits from the estimate)."""
        return cls(
            num_gpu_blocks=pool.num_gpu_blocks,
            max_model_len=pool.max_model_len,
            block_size=pool.block_size,
            max_num_batched_tokens=pool.max_num_batched_tokens,
            max_num_seqs=pool.max_num_seqs,
            enable_prefix_caching=enable_prefix_caching,
            max_loras=max_loras,
            lora_load_s=lora_load_s,
            speculative=speculative,
        )
