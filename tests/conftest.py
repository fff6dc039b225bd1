from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ProcessGroup
from tests.support.redis_server import RedisServer


@pytest.fixture
def procs() -> Iterator[ProcessGroup]:
    group = ProcessGroup()
    try:
        yield group
    finally:
        group.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, stopped after the test."""
    server = RedisServer.start()
    try:
        yield server
    finally:
        server.stop()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/vllm (the real-vLLM tier, `make test-vllm`) runs only when named explicitly:
    it builds a vLLM virtualenv and starts real vLLM servers."""
    if collection_path.name != "vllm" or collection_path.parent != Path(__file__).parent:
        return None
    named = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    return not any(path == collection_path or collection_path in path.parents for path in named)
