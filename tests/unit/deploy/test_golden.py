"""Golden files: every target of every test fleet renders exactly the committed files.

Regenerate after an intended change with

    GPUFLEET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/deploy/test_golden.py

(then review the diff). The helm target of the example fleet is the chart in the
repository, deploy/helm/gpufleet.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gpufleet.deploy.render import TARGETS, render
from tests.unit.deploy.fleets import FLEETS, GOLDEN, REPO_CHART, config

UPDATE = os.environ.get("GPUFLEET_UPDATE_GOLDEN") == "1"


def golden_dir(fleet: str, target: str) -> Path:
    if (fleet, target) == ("example", "helm"):
        return REPO_CHART
    return GOLDEN / fleet / target


def committed(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): p.read_text("utf-8")
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fleet", sorted(FLEETS))
def test_render_matches_golden_files(fleet: str, target: str) -> None:
    files = render(config(fleet), target)
    directory = golden_dir(fleet, target)
    if UPDATE:
        shutil.rmtree(directory, ignore_errors=True)
        for name, text in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    expected = committed(directory)
    assert sorted(files) == sorted(expected), f"file set differs from {directory}"
    for name, text in files.items():
        assert text == expected[name], (
            f"{directory / name} differs (GPUFLEET_UPDATE_GOLDEN=1 to regenerate)"
        )


def test_rendering_is_deterministic() -> None:
    first = {t: render(config("multinode"), t) for t in TARGETS}
    second = {t: render(config("multinode"), t) for t in TARGETS}
    assert first == second
