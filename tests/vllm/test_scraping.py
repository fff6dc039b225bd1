"""The gateway's view of real vLLM load follows the engines' /metrics (3)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.processes import ProcessGroup, wait_for
from tests.vllm.conftest import VllmFleet
from tests.vllm.helpers import IGNORE_EOS, client, endpoints, start_gateway

SCRAPE_INTERVAL_S = 0.1


def test_gateway_view_follows_real_metrics_under_a_burst(
    vllm_fleet: VllmFleet, procs: ProcessGroup, tmp_path: Path
) -> None:
    url = start_gateway(procs, vllm_fleet.urls, tmp_path, profile="least-load")
    views = endpoints(url)
    assert {view["engine"] for view in views.values()} == {"vllm"}  # detected from /metrics
    api = client(url)
    done = threading.Event()

    def stream(i: int) -> None:
        for _ in api.completions.create(
            model="tiny", prompt=f"burst {i}", max_tokens=400, stream=True, extra_body=IGNORE_EOS
        ):
            pass

    samples: list[tuple[float, float, float, float]] = []  # engine before, gateway, after, age

    def sample() -> None:
        server = vllm_fleet.servers[0]
        while not done.is_set():
            before = server.metric("vllm:num_requests_running")
            view = endpoints(url)[server.url]
            after = server.metric("vllm:num_requests_running")
            samples.append(
                (before, float(view["num_running"]), after, float(view["metrics_age_s"]))
            )  # type: ignore[arg-type]
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(24) as pool:
            list(pool.map(stream, range(24)))
    finally:
        done.set()
        sampler.join()
    busy = [s for s in samples if max(s[0], s[2]) > 0]
    print(f"{len(samples)} samples, {len(busy)} busy: {busy}")
    assert len(busy) >= 3, samples
    # the gateway's number is one the engine reported within the last scrape interval:
    # between the engine's values just before and just after (allowing one request of
    # movement in the ~scrape interval before the 'before' reading)
    within = [s for s in busy if min(s[0], s[2]) - 1 <= s[1] <= max(s[0], s[2]) + 1]
    assert len(within) >= 0.8 * len(busy), busy
    assert max(s[3] for s in samples) < 5 * SCRAPE_INTERVAL_S + 0.5
    peak_kv = max(float(v["kv_usage"]) for v in endpoints(url).values())  # type: ignore[arg-type]
    assert peak_kv >= 0.0
    # after the burst, the view returns to idle within a few scrape intervals
    wait_for(
        lambda: all(v["num_running"] == 0 for v in endpoints(url).values()),
        timeout_s=2.0,
        what="gateway view back to idle",
    )


def test_kv_usage_is_seen_while_requests_run(
    vllm_fleet: VllmFleet, procs: ProcessGroup, tmp_path: Path
) -> None:
    url = start_gateway(procs, vllm_fleet.urls, tmp_path, profile="least-load")
    api = client(url)
    seen: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.extend(float(v["kv_usage"]) for v in endpoints(url).values())  # type: ignore[arg-type]
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: api.completions.create(
                model="tiny", prompt=f"kv {i} " * 60, max_tokens=120, extra_body=IGNORE_EOS
            ), range(16)))  # fmt: skip
    finally:
        done.set()
        sampler.join()
    assert max(seen) > 0  # vllm:kv_cache_usage_perc as scraped (1 GiB pool: small but > 0)
