"""A burst onto an idle fleet must not pile onto the replica that looked idle (burst-corrected
load)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.support.processes import ProcessGroup, fleet_config

SHARED_PROMPT = "You are a helpful assistant for a GPU fleet. " * 60  # ~2.7 KB, one prefix for all


async def burst(port: int, num_requests: int) -> tuple[float, list[int]]:
    """Open ``num_requests`` connections, then send every request as fast as possible."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(num_requests)]
    payloads = []
    for i in range(num_requests):
        body = json.dumps({
            "model": "tiny", "max_tokens": 200,
            "messages": [{"role": "system", "content": SHARED_PROMPT},
                         {"role": "user", "content": f"question {i}"}],
        }).encode()  # fmt: skip
        payloads.append(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
    started = time.perf_counter()
    for (_, writer), payload in zip(connections, payloads, strict=True):
        writer.write(payload)  # each fits the socket buffer: on the wire at once
    sent_in = time.perf_counter() - started
    await asyncio.gather(*(writer.drain() for _, writer in connections))
    statuses = []
    for reader, writer in connections:
        response = await asyncio.wait_for(reader.read(), 60)
        statuses.append(int(response.split(b" ", 2)[1]))
        writer.close()
    return sent_in, statuses


@pytest.mark.parametrize("profile", ["default", "least-load"])
def test_burst_of_200_in_20ms_spreads_over_4_idle_replicas(
    procs: ProcessGroup, tmp_path: Path, profile: str
) -> None:
    # real time and 200-token answers: requests outlive the whole burst (queued part
    # included), so the tally shows placement, not which engine process got more CPU
    engines = [procs.engine(speed=1.0) for _ in range(4)]
    config = fleet_config([e.url for e in engines], profile=profile)
    url = procs.gateway(config, tmp_path)
    port = int(url.rsplit(":", 1)[1])
    sent_in, statuses = asyncio.run(burst(port, 200))
    assert sent_in < 0.02, f"the burst took {sent_in * 1000:.1f} ms to send"
    assert statuses == [200] * 200
    counts = [int(e.metric("vllm:request_success_total")) for e in engines]
    assert sum(counts) == 200
    print(f"{profile}: {counts} in {sent_in * 1000:.1f} ms")
    assert max(counts) <= 70, f"a replica got more than 35%: {counts}"
