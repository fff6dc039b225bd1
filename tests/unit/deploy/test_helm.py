"""The Helm chart: ``helm lint`` is clean and ``helm template`` equals the k8s target.

Needs helm at .venv/bin/helm (``make test`` installs it with deploy/install-helm.sh);
without it these tests fail with that instruction rather than skip.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpufleet.deploy.helm import helm_files
from gpufleet.deploy.k8s import k8s_objects
from tests.unit.deploy.fleets import FLEETS, REPO_CHART, spec

HELM = Path(sys.executable).parent / "helm"


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    if not HELM.is_file():
        pytest.fail(f"helm is not installed at {HELM}: run deploy/install-helm.sh (make test does)")
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=60)


def write_chart(fleet: str, directory: Path) -> Path:
    chart = directory / "gpufleet"
    for name, text in helm_files(spec(fleet)).items():
        path = chart / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return chart


def by_identity(objects: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    out = {}
    for obj in objects:
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
        assert key not in out, f"duplicate {key}"
        out[key] = obj
    return out


def test_the_repository_chart_lints_clean() -> None:
    result = helm("lint", "--strict", str(REPO_CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize("fleet", sorted(FLEETS))
def test_helm_template_equals_the_k8s_target(fleet: str, tmp_path: Path) -> None:
    fleet_spec = spec(fleet)
    chart = REPO_CHART if fleet == "example" else write_chart(fleet, tmp_path)
    lint = helm("lint", "--strict", str(chart))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    result = helm("template", "gpufleet", str(chart), "--namespace", fleet_spec.namespace)
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    expected = by_identity(k8s_objects(fleet_spec))
    actual = by_identity(rendered)
    assert sorted(actual) == sorted(expected)
    for key, obj in expected.items():
        assert actual[key] == obj, f"{key} differs between helm template and the k8s target"


def test_the_chart_installs_into_another_namespace(tmp_path: Path) -> None:
    """Names stay, every namespace follows the release (discovery included)."""
    result = helm("template", "fleet", str(REPO_CHART), "--namespace", "other")
    assert result.returncode == 0, result.stderr
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {o["metadata"]["namespace"] for o in objects} == {"other"}
    config = next(o for o in objects if o["metadata"]["name"] == "gpufleet-gateway-config")
    pools = yaml.safe_load(config["data"]["fleet.yaml"])["pools"]
    assert {p["discovery"]["namespace"] for p in pools} == {"other"}
