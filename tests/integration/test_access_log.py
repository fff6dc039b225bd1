"""The access log: one JSON line per request with its class, band, replica and timings,
never the prompt text."""

from __future__ import annotations

import json
from pathlib import Path

import openai

from tests.support.processes import ProcessGroup, fleet_config, wait_for


def test_a_request_is_logged_with_its_class_priority_and_replica(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    engine = procs.engine()
    log = tmp_path / "access.jsonl"
    config = fleet_config([engine.url])
    config["gateway"] = {"access_log": str(log)}
    url = procs.gateway(config, tmp_path)
    api = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    secret = "the prompt text must never reach the log"
    stream = api.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": secret}], max_tokens=5,
        stream=True, extra_headers={"x-request-class": "interactive"},
    )  # fmt: skip
    assert sum(1 for _ in stream) >= 2
    api.completions.create(
        model="tiny", prompt=secret, max_tokens=3, extra_headers={"x-priority": "-3"}
    )

    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 2, timeout_s=10)
    text = log.read_text()
    assert secret not in text
    chat, completion = (json.loads(line) for line in text.splitlines())
    assert chat["class"] == "interactive" and chat["priority"] == 10
    assert chat["endpoint"].endswith("/0") and chat["status"] == 200 and chat["outcome"] == "ok"
    assert chat["stream"] is True and chat["ttft_ms"] > 0 and chat["completion_tokens"] == 5
    assert completion["class"] == "standard" and completion["priority"] == -3
