"""Sizing an engine workload: pipeline stages, nodes, requests, probe budget, instances."""

from __future__ import annotations

import pytest

from gpufleet.config import ModelConfig, PoolConfig
from gpufleet.deploy.instances import InstanceCatalog
from gpufleet.deploy.layout import engine_layout
from gpufleet.deploy.settings import EngineDeployConfig
from gpufleet.errors import ConfigError
from gpufleet.plan.catalog import Catalog

CATALOG = Catalog.load()
INSTANCES = InstanceCatalog.load()
ENGINE = EngineDeployConfig()


def layout(model: str, gpu: str, tp: int, context: int = 8192, engine: EngineDeployConfig = ENGINE):
    return engine_layout(
        ModelConfig(name=model, context_length=context),
        PoolConfig(name="p", gpu=gpu, gpus_per_replica=tp),
        engine,
        CATALOG,
        INSTANCES,
    )


def test_a_model_that_fits_one_node_is_one_pod() -> None:
    small = layout("llama-3-8b", "l40s", 1)
    assert (small.tp, small.pp, small.num_nodes, small.gpus_per_pod) == (1, 1, 1, 1)
    assert small.instance is not None and small.instance.type == "g6e.xlarge"
    assert (small.cpu_per_gpu, small.memory_gib_per_gpu) == (3.0, 24.0), "3/4 of g6e.xlarge"
    big = layout("llama-3-70b", "h100", 4)
    assert (big.pp, big.num_nodes, big.gpus_per_pod) == (1, 1, 4)


def test_405b_spans_two_h100_nodes_but_fits_one_h200_node() -> None:
    h100 = layout("llama-3.1-405b", "h100", 8)
    assert (h100.tp, h100.pp, h100.num_nodes, h100.gpus_per_pod) == (8, 2, 2, 8)
    assert h100.multi_node
    h200 = layout("llama-3.1-405b", "h200", 8)
    assert (h200.pp, h200.num_nodes) == (1, 1)


def test_pipeline_stages_within_one_node_when_tp_leaves_room() -> None:
    result = layout("llama-3-70b", "l40s", 2)
    assert result.pp == 2 and result.num_nodes == 1 and result.gpus_per_pod == 4


def test_startup_budget_grows_with_weights_and_is_capped() -> None:
    small, big = layout("llama-3-8b", "h100", 1), layout("llama-3-70b", "h100", 4)
    assert ENGINE.startup_base_s < small.startup_budget_s < big.startup_budget_s
    assert big.startup_budget_s == pytest.approx(180 + 141.1 / 0.5, abs=2)
    unknown = layout("my-own-model", "h100", 1)
    assert unknown.startup_budget_s == ENGINE.startup_max_s and unknown.pp == 1


def test_impossible_layouts_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="exceeds the 8 GPUs"):
        layout("llama-3-8b", "h100", 16)
    with pytest.raises(ConfigError, match="does not divide"):
        layout("llama-3-70b", "h100", 3)
