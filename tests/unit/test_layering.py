"""DESIGN.md's import direction, enforced: pure policies do no I/O, read no clock, import no
upper layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "gpufleet"
PURE = ("routing", "admission", "autoscale", "plan", "engine", "sim", "workload")
FORBIDDEN_IN_PURE = {
    "asyncio", "socket", "ssl", "selectors", "subprocess", "threading", "http", "urllib",
    "httptools", "uvloop", "aiohttp", "httpx", "prometheus_client", "requests",
    "gpufleet.backends", "gpufleet.api", "gpufleet.gateway", "gpufleet.metrics",
    "gpufleet.cli", "gpufleet.replica", "gpufleet.local", "gpufleet.deploy",
}  # fmt: skip
CLOCK_CALLS = {"time", "monotonic", "perf_counter", "time_ns", "monotonic_ns", "now", "utcnow"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def clock_calls_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in {"time", "datetime"}
        ):
            found.append(f"{path.name}:{node.lineno}")
    return found


def pure_files() -> list[Path]:
    return sorted(p for package in PURE for p in (SRC / package).rglob("*.py"))


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_pure_modules_do_no_io(path: Path) -> None:
    bad = {
        name
        for name in imports_of(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_PURE)
    }
    assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"
    assert not clock_calls_of(path), "pure code takes time as an argument"


def test_sim_never_imports_backends_or_api() -> None:
    for path in (SRC / "sim").rglob("*.py"):
        assert not any(
            n.startswith(("gpufleet.backends", "gpufleet.api")) for n in imports_of(path)
        )


def test_only_api_knows_status_codes_of_errors() -> None:
    """The HTTP mapping of gpufleet errors lives in api/ (errors.py declares statuses)."""
    for path in SRC.rglob("*.py"):
        if path.parent.name in {"api", "replica"} or path.name == "errors.py":
            continue
        assert "error_response(" not in path.read_text(), path


def test_the_control_plane_knows_no_local_fleet() -> None:
    """control/ drives any actuator through its protocol; the local fleet plugs into it
    (local/ imports control/, never the other way round)."""
    for path in (SRC / "control").rglob("*.py"):
        assert not any(n.startswith("gpufleet.local") for n in imports_of(path)), path
