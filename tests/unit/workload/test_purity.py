"""workload/ is pure like the policies (DESIGN.md): no sockets, no clock; files only in traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_layering import FORBIDDEN_IN_PURE, SRC, clock_calls_of, imports_of

FILES = sorted((SRC / "workload").glob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_workload_modules_do_no_io_and_read_no_clock(path: Path) -> None:
    bad = {
        n for n in imports_of(path) for f in FORBIDDEN_IN_PURE if n == f or n.startswith(f + ".")
    }
    assert not bad, f"{path.name} imports {sorted(bad)}"
    assert not clock_calls_of(path)
    if path.name != "traces.py":
        text = path.read_text()
        assert "open(" not in text and "read_text" not in text and "pathlib" not in text
