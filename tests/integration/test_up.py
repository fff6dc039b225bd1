"""`gpufleet up` on the example fleet: fast start, answers, clean exit with no process left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from tests.support.processes import free_port, wait_until_ok


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in out.split()]


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return status != "Z"


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_up_starts_fast_answers_and_stops_cleanly(stop_signal: signal.Signals) -> None:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "gpufleet", "up", "--port", str(port), "--speed", "10"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ok(url + "/ready", process, timeout_s=10.0)
        startup_s = time.monotonic() - started
        assert startup_s < 10.0
        api = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        for model in ("llama-3-8b", "llama-3-70b"):
            reply = api.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Hello!"}], max_tokens=8
            )
            assert reply.choices[0].message.content
        engines = children_of(process.pid)
        assert len(engines) == 5, "2 + 2 + 1 simulated engines"
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
        banner = process.stderr.read().decode() if process.stderr else ""
        assert f"gpufleet is up: http://127.0.0.1:{port}" in banner
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in engines) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in engines if alive(pid)], "engines left behind"
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
