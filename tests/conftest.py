from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import ProcessGroup


@pytest.fixture
def procs() -> Iterator[ProcessGroup]:
    group = ProcessGroup()
    try:
        yield group
    finally:
        group.close()
