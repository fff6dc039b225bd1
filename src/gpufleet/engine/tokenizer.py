"""A deterministic, fast stand-in for a model's tokenizer (for simulated engines).

Algorithm: encode the text as UTF-8, pad it with NUL bytes to a multiple of 4,
XOR it with ``crc32(model_key)`` repeated, read it as little-endian 32-bit words
and map each word ``w`` to ``w mod vocab_size`` — all in numpy's C loops (one XOR,
one modulo, one ``tolist``). So one token ≈ 4 bytes, close to what BPE tokenizers
give for English (≈ 4 characters per token), at ≈ 4 ns per character (77 µs for a
20 KB prompt; the big-int and ``struct`` version before took 307 µs) and no Python
bytecode per token.

Contract: pure and stable across processes and platforms (no ``hash()``).
If two texts share a UTF-8 prefix of ``n`` bytes, their first ``n // 4`` token
ids are equal (prefix property at 4-byte chunk boundaries only; the chunk that
straddles the end of the common prefix generally differs). Different
``model_key``s give unrelated ids. Ids lie in ``[0, vocab_size)``.
"""

from __future__ import annotations

import zlib

import numpy as np

_WORDS = 1 << 32
"""Distinct 32-bit words: a vocabulary at least this large maps every word to itself."""


def approx_token_ids(text: str, model_key: str, vocab_size: int = 32000) -> list[int]:
    """Token ids for ``text`` under ``model_key``'s approximate tokenizer (module doc)."""
    if vocab_size <= 0:
        raise ValueError("vocab_size must be positive")
    data = text.encode("utf-8")
    pad = -len(data) % 4
    if pad:
        data += b"\0" * pad
    words = np.frombuffer(data, dtype="<u4") ^ np.uint32(zlib.crc32(model_key.encode("utf-8")))
    if vocab_size < _WORDS:
        words %= np.uint32(vocab_size)
    ids: list[int] = words.tolist()
    return ids


def approx_num_tokens(text: str) -> int:
    """How many ids `approx_token_ids` returns for ``text`` (without computing them)."""
    return -(-len(text.encode("utf-8")) // 4)
