"""The approximate tokenizer and synthetic output text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gpufleet.engine.synthetic_text import output_seed, synthetic_piece, synthetic_text
from gpufleet.engine.tokenizer import approx_num_tokens, approx_token_ids


@given(st.text(), st.text(), st.text())
def test_equal_prefixes_give_equal_token_prefixes(common: str, tail_a: str, tail_b: str) -> None:
    a = approx_token_ids(common + tail_a, "llama-3-8b", 128256)
    b = approx_token_ids(common + tail_b, "llama-3-8b", 128256)
    num_shared = len(common.encode("utf-8")) // 4
    assert a[:num_shared] == b[:num_shared]


@given(st.text(), st.integers(1, 200_000))
def test_ids_are_deterministic_in_range_and_counted(text: str, vocab_size: int) -> None:
    ids = approx_token_ids(text, "m", vocab_size)
    assert ids == approx_token_ids(text, "m", vocab_size)
    assert all(0 <= i < vocab_size for i in ids)
    assert len(ids) == approx_num_tokens(text)


def test_about_four_characters_per_token_and_model_salt() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20
    ids = approx_token_ids(text, "llama-3-8b", 128256)
    assert len(ids) == -(-len(text) // 4)
    assert ids != approx_token_ids(text, "mistral-7b", 128256)
    assert approx_token_ids("", "x") == []


def test_pinned_values_are_stable_across_processes() -> None:
    # crc32/struct based, not hash(): these never change with PYTHONHASHSEED
    assert approx_token_ids("Hello, world!", "tiny-llama", 328) == [
        approx_token_ids("Hell", "tiny-llama", 328)[0],
        approx_token_ids("o, w", "tiny-llama", 328)[0],
        approx_token_ids("orld", "tiny-llama", 328)[0],
        approx_token_ids("!", "tiny-llama", 328)[0],
    ]
    assert output_seed("req-1") == output_seed("req-1") != output_seed("req-2")


def test_synthetic_text_is_a_pure_function_of_seed_and_index() -> None:
    seed = output_seed("chatcmpl-123")
    pieces = [synthetic_piece(seed, i) for i in range(50)]
    assert synthetic_text(seed, 0, 50) == "".join(pieces)
    assert synthetic_text(seed, 10, 5) == "".join(pieces[10:15])
    assert all(p.startswith(" ") and 2 <= len(p) <= 6 for p in pieces)
    assert len(set(pieces)) > 10
    assert synthetic_text(seed + 1, 0, 50) != synthetic_text(seed, 0, 50)
