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
            model="tiny", prompt=f"burst {i}", max_tokens=450, stream=True, extra_body=IGNORE_EOS
        ):
            pass

    # alternate readings: engine, gateway, engine, gateway, ... (one HTTP call each); a
    # reading that times out (vLLM answers /metrics slowly under load) is skipped, which
    # only widens the window a gateway reading is compared against
    readings: list[tuple[str, float, float]] = []  # source, running, gateway's metric age

    def sample() -> None:
        server = vllm_fleet.servers[0]
        while not done.is_set():
            try:
                engine = server.metric("vllm:num_requests_running", timeout_s=10.0)
                view = endpoints(url)[server.url]
            except OSError:
                continue
            readings.append(("engine", engine, 0.0))
            readings.append(("gateway", float(view["num_running"]), float(view["metrics_age_s"])))  # type: ignore[arg-type]
        readings.append(("engine", server.metric("vllm:num_requests_running", 10.0), 0.0))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(48) as pool:
            list(pool.map(stream, range(48)))
    finally:
        done.set()
        sampler.join()
    # each gateway reading against the engine readings just before and just after it
    triples = [
        (readings[i - 1][1], readings[i][1], readings[i + 1][1], readings[i][2])
        for i in range(1, len(readings) - 1)
        if readings[i][0] == "gateway"
    ]
    busy = [t for t in triples if max(t[0], t[2]) > 0]
    print(f"{len(triples)} gateway readings, {len(busy)} under load: {busy}")
    assert len(busy) >= 3, triples
    # the gateway's number is one the engine reported within the metric age: between the
    # engine's values just before and just after (± one request of movement)
    within = [t for t in busy if min(t[0], t[2]) - 1 <= t[1] <= max(t[0], t[2]) + 1]
    assert len(within) >= 0.75 * len(busy), busy
    # 0.1 s scrape interval: the view is fresh for most readings. vLLM's API server sometimes
    # answers /metrics seconds late while it streams to 48 clients on a shared core (a CI run
    # saw 6 s), and the age shows that honestly, so the tail is not bounded here; a scraper
    # that stalled or blocked on the request path would fail the median and the share.
    ages = sorted(t[3] for t in busy)
    assert ages[len(ages) // 2] < 0.5, ages
    assert sum(age < 1.0 for age in ages) >= 0.75 * len(ages), ages
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
