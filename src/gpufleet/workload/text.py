"""Synthetic prompt text of a given token length, and the token estimate used everywhere. Pure.

Token estimate: ⌈UTF-8 bytes / 4⌉ — about what BPE tokenizers give for
English, and exactly what gpufleet's simulated engines count. `synthetic_text`
returns ASCII text of exactly ``4 · num_tokens`` bytes (words drawn from a
fixed list with the caller's rng), so its estimate is exactly ``num_tokens``.
"""

from __future__ import annotations

import random

_WORDS: tuple[str, ...] = (
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with",
    "be", "by", "on", "not", "this", "are", "or", "from", "at", "which", "but", "have",
    "an", "they", "you", "were", "there", "one", "all", "we", "can", "has", "been", "if",
    "more", "when", "will", "would", "who", "so", "no", "time", "data", "model", "token",
    "fleet", "node", "queue", "cache", "step", "batch", "load", "path", "rate", "cost",
    "plan", "route", "request", "answer", "question", "summary", "system", "latency",
    "memory", "kernel", "tensor", "layer", "prompt", "output", "engine", "replica",
)  # fmt: skip


def estimate_tokens(text: str) -> int:
    """The token estimate of ``text`` (module doc)."""
    return -(-len(text.encode("utf-8")) // 4)


def synthetic_text(num_tokens: int, rng: random.Random) -> str:
    """Space-separated words, exactly ``4 · num_tokens`` ASCII bytes (``""`` for 0)."""
    if num_tokens <= 0:
        return ""
    size = 4 * num_tokens
    words = rng.choices(_WORDS, k=size // 3 + 2)  # words average > 3 bytes with their space
    text = " ".join(words)
    while len(text) < size:
        text += " " + " ".join(rng.choices(_WORDS, k=size // 3 + 2))
    return text[:size]
