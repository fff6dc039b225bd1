"""docs/commands/ is the parser's --help, page for page (regenerate with
`python -m gpufleet.command_docs docs/commands`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpufleet.command_docs import pages

DOCS = Path(__file__).resolve().parents[2] / "docs" / "commands"


@pytest.fixture(autouse=True)
def fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps help to the terminal width


@pytest.mark.parametrize("name", sorted(pages()))
def test_command_page_matches_the_parser(name: str) -> None:
    expected = pages()[name]
    path = DOCS / name
    assert path.exists(), f"{path} missing: run python -m gpufleet.command_docs docs/commands"
    assert path.read_text(encoding="utf-8") == expected, (
        f"{path} is stale: run COLUMNS=100 python -m gpufleet.command_docs docs/commands"
    )


def test_every_command_has_a_page() -> None:
    assert {p.name for p in DOCS.glob("*.md")} == set(pages())
    assert os.environ["COLUMNS"] == "100"
