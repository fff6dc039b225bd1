"""A deterministic, fast stand-in for a model's tokenizer (for simulated engines).

Algorithm: encode the text as UTF-8, pad it with NUL bytes to a multiple of 4,
XOR it with ``crc32(model_key)`` repeated, read it as little-endian 32-bit words
and map each word ``w`` to ``w mod vocab_size`` — all in C-level loops (one
big-int XOR, one ``struct.unpack``, one ``map``). So one token ≈ 4 bytes, close
to what BPE tokenizers give for English (≈ 4 characters per token), at
≈ 15 ns per character and no Python bytecode per token.

Contract: pure and stable across processes and platforms (no ``hash()``).
If two texts share a UTF-8 prefix of ``n`` bytes, their first ``n // 4`` token
ids are equal (prefix property at 4-byte chunk boundaries only; the chunk that
straddles the end of the common prefix generally differs). Different
``model_key``s give unrelated ids. Ids lie in ``[0, vocab_size)``.
"""

from __future__ import annotations

import struct
import zlib


def approx_token_ids(text: str, model_key: str, vocab_size: int = 32000) -> list[int]:
    """Token ids for ``text`` under ``model_key``'s approximate tokenizer (module doc)."""
    if vocab_size <= 0:
        raise ValueError("vocab_size must be positive")
    data = text.encode("utf-8")
    pad = -len(data) % 4
    if pad:
        data += b"\0" * pad
    num_words = len(data) // 4
    salt = zlib.crc32(model_key.encode("utf-8")).to_bytes(4, "little") * num_words
    salted = int.from_bytes(data, "little") ^ int.from_bytes(salt, "little")
    words = struct.unpack(f"<{num_words}I", salted.to_bytes(len(data), "little"))
    return list(map(vocab_size.__rmod__, words))


def approx_num_tokens(text: str) -> int:
    """How many ids `approx_token_ids` returns for ``text`` (without computing them)."""
    return -(-len(text.encode("utf-8")) // 4)
