"""The catalog data files and lookups."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpufleet.plan.catalog import Catalog
from gpufleet.plan.model_spec import ModelSpec

REQUIRED_MODELS = (
    "llama-3-8b",
    "llama-3-70b",
    "llama-3.1-405b",
    "mistral-7b",
    "mixtral-8x7b",
    "qwen2.5-72b",
    "tiny-llama",
)
REQUIRED_GPUS = ("a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "l40s", "l4", "a10g")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_required_entries_with_kebab_case_ids(catalog: Catalog) -> None:
    assert set(REQUIRED_MODELS) <= set(catalog.models)
    assert set(REQUIRED_GPUS) <= set(catalog.gpus)
    for key in (*catalog.models, *catalog.gpus):
        assert re.fullmatch(r"[a-z0-9][a-z0-9.]*(-[a-z0-9.]+)*", key), key


@pytest.mark.parametrize(
    ("key", "mem_gb", "bandwidth", "bf16", "fp8", "link"),
    [
        ("a100-40gb", 40, 1555, 312, None, "nvlink"),
        ("a100-80gb", 80, 2039, 312, None, "nvlink"),
        ("h100-sxm", 80, 3350, 989, 1979, "nvlink"),
        ("h100-pcie", 80, 2000, 756, 1513, "pcie"),
        ("h200", 141, 4800, 989, 1979, "nvlink"),
        ("l40s", 48, 864, 362, 733, "pcie"),
        ("l4", 24, 300, 121, 242, "pcie"),
        ("a10g", 24, 600, 70, None, "pcie"),
    ],
)
def test_gpu_figures_match_reference(
    catalog: Catalog,
    key: str,
    mem_gb: float,
    bandwidth: float,
    bf16: float,
    fp8: float | None,
    link: str,
) -> None:
    gpu = catalog.gpu(key)
    assert (gpu.mem_gb, gpu.mem_bandwidth_gb_per_s, gpu.bf16_tflops) == (mem_gb, bandwidth, bf16)
    assert gpu.fp8_tflops == fp8
    assert gpu.interconnect == link
    assert gpu.interconnect_gb_per_s > 0
    # CUDA-visible total is a little under the datasheet's binary-sized figure
    assert 0.9 * mem_gb < gpu.mem_total_gib < mem_gb


def test_vllm_scheduler_defaults_by_class(catalog: Catalog) -> None:
    for key, gpu in catalog.gpus.items():
        expected = (8192, 1024) if key.startswith(("h100", "h200")) else (2048, 256)
        assert (gpu.max_num_batched_tokens, gpu.max_num_seqs) == expected, key


def test_lookups_by_alias_case_and_hf_id(catalog: Catalog) -> None:
    assert catalog.gpu("h100").key == "h100-sxm"
    assert catalog.gpu("H100-SXM").key == "h100-sxm"
    assert catalog.gpu("a100").key == "a100-80gb"
    assert catalog.model("meta-llama/Meta-Llama-3-8B-Instruct").key == "llama-3-8b"
    assert catalog.model("Mixtral-8x7B").key == "mixtral-8x7b"
    with pytest.raises(KeyError, match="known: "):
        catalog.model("gpt-5")
    with pytest.raises(KeyError):
        catalog.gpu("b200")


def test_fp8_peak_selected_for_one_byte_weights(catalog: Catalog) -> None:
    h100 = catalog.gpu("h100")
    assert h100.peak_flops(1) == 1979e12
    assert h100.peak_flops(2) == 989e12
    assert catalog.gpu("a100").peak_flops(1) == 312e12


def test_user_model_from_config_json(catalog: Catalog) -> None:
    fixture = Path("/work/shared/fixtures/vllm-0.32.0-cpu/tiny-llama-config.json")
    spec = ModelSpec.from_hf_config(fixture, key="my-tiny")
    extended = catalog.with_model(spec)
    assert extended.model("my-tiny") is spec
    assert "my-tiny" not in catalog.models


def test_bad_catalog_file_is_reported(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  broken:\n    hidden_size: 8\n")
    with pytest.raises(ValueError, match=r"'broken': config\.json lacks"):
        Catalog.load(models_yaml=models)
    gpus = tmp_path / "gpus.yaml"
    gpus.write_text("gpus: {}\naliases:\n  x: nowhere\n")
    with pytest.raises(ValueError, match="unknown GPU"):
        Catalog.load(gpus_yaml=gpus)
