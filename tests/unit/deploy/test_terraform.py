"""The rendered Terraform is formatted (``terraform fmt -check``) and valid
(``terraform init -plugin-dir=/opt/tf-plugins && terraform validate``, AWS provider only).

One ``terraform init`` serves every fleet: the provider is the same, only the .tf files
change. Skipped, with the reason, where terraform is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpufleet.deploy.render import render
from gpufleet.deploy.terraform_nodes import root_volume_gib
from tests.unit.deploy.fleets import FLEETS, config, spec

TERRAFORM = shutil.which("terraform")
PLUGIN_DIR = os.environ.get("GPUFLEET_TF_PLUGIN_DIR", "/opt/tf-plugins")
pytestmark = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")


def terraform(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    return subprocess.run(
        [TERRAFORM, f"-chdir={directory}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def write(directory: Path, fleet: str) -> None:
    for old in directory.glob("*.tf"):
        old.unlink()
    for name, text in render(config(fleet), "terraform").items():
        (directory / name).write_text(text)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("terraform")
    write(directory, "example")
    init = terraform(
        directory, "init", "-backend=false", "-input=false", f"-plugin-dir={PLUGIN_DIR}"
    )
    assert init.returncode == 0, init.stdout + init.stderr
    yield directory


@pytest.mark.parametrize("fleet", sorted(FLEETS))
def test_terraform_is_formatted_and_valid(workdir: Path, fleet: str) -> None:
    write(workdir, fleet)
    fmt = terraform(workdir, "fmt", "-check", "-diff")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    validate = terraform(workdir, "validate", "-no-color")
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_node_groups_follow_the_pools() -> None:
    files = render(config("multinode"), "terraform")
    groups = files["node_groups.tf"]
    assert 'capacity_type          = "SPOT"' in groups
    assert '"g6.xlarge", "g6.2xlarge"' in groups, "spot pools diversify instance types"
    assert '"gpufleet.io/gpu-type" = "h100-sxm"' in groups
    assert 'effect = "NO_SCHEDULE"' in groups
    assert "aws_placement_group.h100_multinode.name" in groups, (
        "multi-node replicas: one placement group"
    )
    pools = {p.name: p for p in spec("multinode").pools}
    assert (pools["h100-multinode"].min_nodes, pools["h100-multinode"].max_nodes) == (2, 8)
    assert root_volume_gib(pools["h100-multinode"]) > 2 * 756
    assert "node-termination-handler-values.yaml" in files
    assert "node-termination-handler-values.yaml" not in render(config("minimal"), "terraform")
