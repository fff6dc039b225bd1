"""vLLM's own errors reach the client unchanged; the gateway's own errors have vLLM's shape (4)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.processes import ProcessGroup, http_post
from tests.vllm.conftest import VllmFleet
from tests.vllm.helpers import start_gateway


def post(url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    status, payload = http_post(url + "/v1/chat/completions", json.dumps(body).encode())
    return status, json.loads(payload)


def test_too_many_tokens_is_vllms_400_unchanged(
    vllm_fleet: VllmFleet, procs: ProcessGroup, tmp_path: Path
) -> None:
    url = start_gateway(procs, vllm_fleet.urls, tmp_path)
    body = {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "max_tokens": 100000}
    via_gateway = post(url, body)
    direct = post(vllm_fleet.urls[0], body)
    assert via_gateway[0] == direct[0] == 400
    assert via_gateway[1] == direct[1]
    assert "max_model_len=512" in str(via_gateway[1]["error"])


def test_unknown_model_404_same_shape_relayed_or_answered_by_the_gateway(
    vllm_fleet: VllmFleet, procs: ProcessGroup, tmp_path: Path
) -> None:
    url = start_gateway(procs, vllm_fleet.urls, tmp_path)
    message = [{"role": "user", "content": "x"}]
    # 'ghost' is a LoRA adapter name the gateway knows and vLLM does not serve: vLLM's 404
    relayed = post(url, {"model": "ghost", "messages": message})
    direct = post(vllm_fleet.urls[0], {"model": "ghost", "messages": message})
    assert relayed[0] == direct[0] == 404
    assert relayed[1] == direct[1]
    # a name nobody knows: the gateway answers itself, in vLLM's shape
    own = post(url, {"model": "nope", "messages": message})
    vllm_own = post(vllm_fleet.urls[0], {"model": "nope", "messages": message})
    assert own[0] == vllm_own[0] == 404
    own_error, vllm_error = own[1]["error"], vllm_own[1]["error"]
    assert isinstance(own_error, dict) and isinstance(vllm_error, dict)
    assert set(own_error) == set(vllm_error) == {"message", "type", "param", "code"}
    assert own_error["param"] == vllm_error["param"] == "model"
    # values follow OpenAI's API where vLLM differs: code "model_not_found" (vLLM: 404)
    assert own_error["code"] == "model_not_found" and vllm_error["code"] == 404
