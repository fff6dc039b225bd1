"""Model-derived sizes against published figures (REFERENCE.md "Models")."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gpufleet.plan.catalog import Catalog
from gpufleet.plan.gpu_spec import GIB
from gpufleet.plan.model_spec import ModelSpec

FIXTURES = Path("/work/shared/fixtures/vllm-0.32.0-cpu")
TINY_CONFIG = FIXTURES / "tiny-llama-config.json"
KIB = 1024


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.mark.parametrize(
    ("key", "params_b", "weights_gb"),
    [
        ("llama-3-8b", 8.03, 16.06),
        ("llama-3-70b", 70.55, 141.1),
        ("llama-3.1-405b", 405.85, 811.7),
        ("mistral-7b", 7.24, 14.5),
        ("mixtral-8x7b", 46.70, 93.4),
        ("qwen2.5-72b", 72.71, 145.4),
    ],
)
def test_parameters_and_bf16_weights_match_published(
    catalog: Catalog, key: str, params_b: float, weights_gb: float
) -> None:
    model = catalog.model(key)
    assert model.num_params / 1e9 == pytest.approx(params_b, rel=0.005)
    assert model.weight_bytes() / 1e9 == pytest.approx(weights_gb, rel=0.005)


def test_mixtral_active_parameters(catalog: Catalog) -> None:
    mixtral = catalog.model("mixtral-8x7b")
    assert mixtral.is_moe
    assert mixtral.num_active_params / 1e9 == pytest.approx(12.88, rel=0.005)
    dense = catalog.model("llama-3-8b")
    assert dense.num_active_params == dense.num_params


@pytest.mark.parametrize(
    ("key", "kv_kib"),
    [
        ("llama-3-8b", 128),
        ("llama-3-70b", 320),
        ("llama-3.1-405b", 504),
        ("mistral-7b", 128),
        ("mixtral-8x7b", 128),
        ("qwen2.5-72b", 320),
    ],
)
def test_kv_bytes_per_token_bf16(catalog: Catalog, key: str, kv_kib: int) -> None:
    assert catalog.model(key).kv_bytes_per_token() == kv_kib * KIB


def test_tiny_fixture_config_matches_real_vllm_kv_size() -> None:
    tiny = ModelSpec.from_hf_config(TINY_CONFIG, key="tiny-llama")
    assert tiny.kv_bytes_per_token() == 1024  # 2 × 2 layers × 2 KV heads × 64 × 2 bytes
    # real vLLM 0.32.0: "CPU KV cache size: 1,048,576 tokens" for 1 GiB ...
    assert GIB // tiny.kv_bytes_per_token() == 1_048_576
    # ... and cache_config_info{block_size="128", num_gpu_blocks="8192"}
    assert GIB // (128 * tiny.kv_bytes_per_token()) == 8192


def test_catalog_tiny_llama_copies_the_fixture(catalog: Catalog) -> None:
    from_file = ModelSpec.from_hf_config(TINY_CONFIG, key="tiny-llama")
    in_catalog = catalog.model("tiny-llama")
    assert from_file == replace(in_catalog, hf_ids=())


def test_from_hf_config_accepts_a_mapping_and_defaults() -> None:
    config = json.loads(TINY_CONFIG.read_text())
    del config["head_dim"]
    config["_name_or_path"] = "someone/Tiny_Llama-v2"
    spec = ModelSpec.from_hf_config(config)
    assert spec.key == "tiny-llama-v2"
    assert spec.head_dim == 256 // 4
    del config["attention_bias"]
    qwen = ModelSpec.from_hf_config({**config, "model_type": "qwen2"})
    assert qwen.attention_bias
    assert qwen.num_params > spec.num_params


def test_from_hf_config_reads_moe_and_old_dtype_keys() -> None:
    config = {
        "model_type": "mixtral",
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "vocab_size": 100,
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "torch_dtype": "float16",
    }
    spec = ModelSpec.from_hf_config(config, key="mini-moe")
    assert (spec.num_local_experts, spec.num_experts_per_tok, spec.dtype) == (4, 2, "float16")
    expert = 3 * 64 * 128 * 2  # per expert, both layers
    assert spec.num_params - spec.num_active_params == 2 * expert


def test_from_hf_config_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="hidden_size"):
        ModelSpec.from_hf_config({"num_hidden_layers": 2}, key="x")
    config = json.loads(TINY_CONFIG.read_text())
    with pytest.raises(ValueError, match="integer"):
        ModelSpec.from_hf_config({**config, "vocab_size": "328"}, key="x")
    with pytest.raises(ValueError, match="dtype"):
        ModelSpec.from_hf_config({**config, "dtype": "bfloat13"}, key="x")


def test_tensor_parallel_shares(catalog: Catalog) -> None:
    llama70 = catalog.model("llama-3-70b")
    assert llama70.num_kv_heads_per_gpu(2) == 4
    assert llama70.num_kv_heads_per_gpu(8) == 1
    assert llama70.num_kv_heads_per_gpu(16) == 1  # fewer KV heads than GPUs: replicated
    assert llama70.kv_bytes_per_token_per_gpu(4) == 320 * KIB // 4
    assert llama70.kv_bytes_per_token_per_gpu(16) == 320 * KIB // 8
    per_gpu = llama70.weight_bytes_per_gpu(4)
    assert per_gpu == pytest.approx(llama70.weight_bytes() / 4, rel=0.001)
    assert per_gpu > llama70.weight_bytes() / 4  # norms are replicated
    with pytest.raises(ValueError, match="TP 3"):
        llama70.check_tensor_parallel(3)
    with pytest.raises(ValueError):
        llama70.num_kv_heads_per_gpu(0)


def test_fp8_override_halves_weights(catalog: Catalog) -> None:
    llama8 = catalog.model("llama-3-8b")
    assert llama8.weight_bytes(1) * 2 == llama8.weight_bytes()
    assert llama8.kv_bytes_per_token(kv_bytes_per_value=1) == 64 * KIB
