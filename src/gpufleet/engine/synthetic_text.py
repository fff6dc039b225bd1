"""Deterministic text for a simulated engine's output tokens.

Contract: pure functions. Output token ``index`` of the request with seed
``seed`` always renders as the same short word piece (a leading space and 1–4
letters, drawn from a fixed list by a 64-bit mix of ``(seed, index)``), so a
stream of pieces concatenates into plausible-looking, reproducible text.
`output_seed` derives the seed from a request id (CRC-32, stable across
processes), matching the engine model's convention that output tokens are a
function of the request id.
"""

from __future__ import annotations

import zlib

_PIECES: tuple[str, ...] = (
    " the", " of", " and", " to", " in", " a", " is", " that",
    " for", " it", " as", " was", " with", " be", " by", " on",
    " not", " he", " this", " are", " or", " his", " from", " at",
    " which", " but", " have", " an", " had", " they", " you", " were",
    " there", " one", " all", " we", " can", " her", " has", " been",
    " if", " more", " when", " will", " would", " who", " so", " no",
    " time", " data", " model", " token", " fleet", " node", " queue", " cache",
    " step", " batch", " load", " path", " rate", " cost", " plan", " route",
)  # fmt: skip

_MIX = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def output_seed(request_id: str) -> int:
    """Stable seed of a request's synthetic output."""
    return zlib.crc32(request_id.encode("utf-8"))


def synthetic_piece(seed: int, index: int) -> str:
    """Text of output token ``index`` of the output with ``seed``."""
    x = ((seed * _MIX) ^ (index * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB)) & _MASK64
    x = ((x ^ (x >> 31)) * 0x94D049BB133111EB) & _MASK64
    return _PIECES[(x >> 32) % len(_PIECES)]


def synthetic_text(seed: int, start: int, num_tokens: int) -> str:
    """Concatenated pieces of output tokens ``start .. start + num_tokens − 1``."""
    return "".join(synthetic_piece(seed, i) for i in range(start, start + num_tokens))
