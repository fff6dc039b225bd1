"""``gpufleet up --autoscale``: the fleet's SLO autoscaler, in-process with the gateway on
engine time (``--speed 10``), scales a deployment up under streaming load — new engines
registered with the running gateway and serving, no request failing — and back down to
its minimum once the load is gone, each decision logged with its reason and counted."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import openai
import orjson
import yaml

from tests.integration.test_preemption_live import metric_samples
from tests.support.processes import ProcessGroup, free_port, http_get, wait_until_ok

KEY = "l40s-spot/llama-3-8b"


def autoscaled_fleet(port: int) -> dict[str, object]:
    return {
        "gateway": {"port": port, "access_log": "off"},
        "models": [{"name": "llama-3-8b"}],
        "pools": [
            {
                "name": "l40s-spot",
                "gpu": "l40s",
                "capacity": "spot",
                "price_usd_per_gpu_hour": 1.1,
                "deployments": [
                    {"model": "llama-3-8b", "replicas": 1, "min_replicas": 1, "max_replicas": 3}
                ],
            }
        ],
        "health": {"interval_s": 0.2, "timeout_s": 0.5},
        "autoscale": {
            "enabled": True,
            "interval_s": 5,
            "cold_start_s": 10,
            "scale_down_delay_s": 20,
            "cooldown_s": 10,
            "idle_to_zero_s": None,
            "models": {"llama-3-8b": {"capacity_requests_per_s": 1.0}},
        },
    }


def healthy_replicas(url: str) -> list[str]:
    _, body = http_get(url + "/admin/endpoints")
    return sorted(e["id"] for e in orjson.loads(body)["endpoints"] if e["state"] == "healthy")


def wait_for_replicas(url: str, count: int, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while len(healthy_replicas(url)) != count:
        assert time.monotonic() < deadline, f"not {count} replicas: {healthy_replicas(url)}"
        time.sleep(0.05)
    return time.monotonic()


def test_up_autoscale_scales_up_under_load_and_back_down_when_idle(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(autoscaled_fleet(port)))
    url = f"http://127.0.0.1:{port}"
    group = ProcessGroup()
    stop = threading.Event()
    failures: list[str] = []
    completed = [0]

    def stream() -> None:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        while not stop.is_set():
            try:
                chunks = list(
                    client.chat.completions.create(
                        model="llama-3-8b",
                        messages=[{"role": "user", "content": "Hello!"}],
                        max_tokens=32,
                        stream=True,
                    )
                )
                assert chunks[-1].choices[0].finish_reason is not None
                completed[0] += 1
            except (openai.OpenAIError, AssertionError) as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=stream) for _ in range(4)]
    log = ""
    try:
        up = group.spawn(["-v", "up", "-c", str(path), "--speed", "10", "--autoscale"])
        wait_until_ok(url + "/ready", up, timeout_s=30.0)
        assert healthy_replicas(url) == [f"{KEY}/0"]
        for thread in threads:
            thread.start()
        wait_for_replicas(url, 3, timeout_s=20.0)
        time.sleep(0.5)
        served_by_new = sum(
            value
            for name, labels, value in metric_samples(url)
            if name == "gpufleet_time_to_first_token_seconds_count"
            and labels.get("endpoint") in (f"{KEY}/1", f"{KEY}/2")
        )
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        try:
            # the arrival-rate level averages over ≥ 500 arrivals (noise guard): at ~1.4 req/s
            # it decays with a ~360 s time constant of engine time (36 s here)
            wait_for_replicas(url, 1, timeout_s=60.0)
        except AssertionError as exc:  # say what the controller decided
            raise AssertionError(f"{exc}\n{group.output(up)[-4000:]}") from None
        decisions = {
            labels["direction"]: value
            for name, labels, value in metric_samples(url)
            if name == "gpufleet_controller_decisions_total"
        }
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=20)
        log = group.output(up)
        assert up.returncode == 0, log[-2000:]
    finally:
        stop.set()
        group.close()
    assert failures == [], failures[:5]
    assert completed[0] > 20
    assert served_by_new > 0, "the new replicas never served"
    assert re.search(rf"scale up {KEY}: 1 -> [23] replicas \(demand", log), log[-2000:]
    assert f"scale down {KEY}:" in log and "-> 1 replicas" in log
    assert decisions["up"] >= 1 and decisions["down"] >= 1
    assert "Traceback" not in log
