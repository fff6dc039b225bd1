"""The official openai client through the gateway to real vLLM: vLLM's own answers, relayed
faithfully (1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.processes import ProcessGroup
from tests.vllm.conftest import VllmFleet
from tests.vllm.helpers import IGNORE_EOS, client, start_gateway

DEBUG = {"x-gpufleet-debug": "1"}
MESSAGES = [{"role": "user", "content": "hello world, summarise the document"}]


def without_ids(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in ("id", "created")}


def shape(value: Any, blank: tuple[str, ...] = ("id", "created", "content", "text")) -> Any:
    """``value`` with ids, timestamps and generated text blanked: what must match between
    two greedy runs whose near-tied tokens may differ (a random model in bf16; a
    prefix-cache hit changes the arithmetic slightly)."""
    if isinstance(value, dict):
        return {k: "*" if k in blank else shape(v, blank) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, blank) for v in value]
    return value


def finish_event(events: list[Any]) -> Any:
    """The one event that carries a finish reason."""
    (event,) = [e for e in events if e.get("choices") and e["choices"][0].get("finish_reason")]
    return event


def event_kinds(events: list[Any]) -> dict[str, set[str]]:
    """Event shapes by kind: ``token`` (no role, no finish, no usage) and ``other``."""
    kinds: dict[str, set[str]] = {"token": set(), "other": set()}
    for event in events:
        choices = event.get("choices") or [{}]
        plain = (
            event.get("usage") is None
            and choices[0].get("finish_reason") is None
            and (choices[0].get("delta") or {}).get("role") is None
            and choices != [{}]
        )
        kinds["token" if plain else "other"].add(json.dumps(event, sort_keys=True))
    return kinds


def test_models_lists_the_served_name(vllm_fleet: VllmFleet, procs: ProcessGroup, tmp_path: Path):
    url = start_gateway(procs, vllm_fleet.urls, tmp_path)
    names = {model.id for model in client(url).models.list()}
    assert "tiny" in names
    direct = {model.id for model in client(vllm_fleet.urls[0]).models.list()}
    assert direct == {"tiny"}


def test_chat_and_completion_are_vllms_own_answers(
    vllm_fleet: VllmFleet, procs: ProcessGroup, tmp_path: Path
) -> None:
    url = start_gateway(procs, vllm_fleet.urls, tmp_path)
    raw = client(url).chat.completions.with_raw_response.create(
        model="tiny", messages=MESSAGES, max_tokens=12, temperature=0, extra_headers=DEBUG
    )
    replica = raw.headers["x-gpufleet-endpoint"]
    via_gateway = raw.parse()
    body = raw.http_response.text
    assert '"system_fingerprint":"vllm-0.32.0' in body and '"kv_transfer_params"' in body
    direct = client(_url_of(vllm_fleet, url, replica)).chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=12, temperature=0
    )
    assert via_gateway.id.startswith("chatcmpl-") and via_gateway.id != direct.id
    assert shape(via_gateway.model_dump()) == shape(direct.model_dump())
    assert via_gateway.choices[0].finish_reason == "length"
    assert via_gateway.usage is not None and via_gateway.usage.completion_tokens == 12

    completion = client(url).completions.create(
        model="tiny", prompt="the quick brown fox", max_tokens=8, temperature=0
    )
    direct_completion = client(vllm_fleet.urls[0]).completions.create(
        model="tiny", prompt="the quick brown fox", max_tokens=8, temperature=0
    )
    assert shape(completion.model_dump()) == shape(direct_completion.model_dump())
    assert completion.usage == direct_completion.usage


def test_streams_are_relayed_event_for_event(
    vllm_fleet: VllmFleet, procs: ProcessGroup, tmp_path: Path
) -> None:
    """Each event of the gateway's stream equals the event a direct request to the same
    replica gets (greedy decoding is repeatable on one replica; across replicas near-tied
    logits of a random model may differ)."""
    url = start_gateway(procs, vllm_fleet.urls, tmp_path)
    for with_usage in (True, False):
        options: Any = {"include_usage": True} if with_usage else None
        raw = client(url).chat.completions.with_raw_response.create(
            model="tiny", messages=MESSAGES, max_tokens=10, temperature=0, stream=True,
            stream_options=options, extra_body=IGNORE_EOS, extra_headers=DEBUG,
        )  # fmt: skip
        replica = _url_of(vllm_fleet, url, raw.headers["x-gpufleet-endpoint"])
        chunks = list(raw.parse())
        direct = list(
            client(replica).chat.completions.create(
                model="tiny", messages=MESSAGES, max_tokens=10, temperature=0, stream=True,
                stream_options=options, extra_body=IGNORE_EOS,
            )
        )  # fmt: skip
        assert len({c.id for c in chunks}) == 1
        # Without include_usage the gateway still asks vLLM for usage (token metrics, budgets)
        # and drops that event; vLLM then sends system_fingerprint on it, not on the
        # finish chunk (documented in docs/vllm.md).
        blank = (
            "id",
            "created",
            "content",
            "text",
            *(() if with_usage else ("system_fingerprint",)),
        )
        # vLLM may coalesce tokens into fewer events — down to none between the first and
        # the finishing one — so compare the kinds of events (role, token, finish, usage) and
        # the closing ones rather than event counts
        ours = [shape(c.model_dump(), blank) for c in chunks]
        theirs = [shape(c.model_dump(), blank) for c in direct]
        assert ours[0] == theirs[0] and ours[-1] == theirs[-1]
        assert finish_event(ours) == finish_event(theirs)
        our_kinds, their_kinds = event_kinds(ours), event_kinds(theirs)
        our_tokens, their_tokens = our_kinds.pop("token"), their_kinds.pop("token")
        if our_tokens and their_tokens:  # neither stream had all its tokens coalesced away
            assert our_tokens == their_tokens
        assert our_kinds == their_kinds
        assert (chunks[-1].usage is not None) is with_usage
        assert chunks[-2 if with_usage else -1].choices[0].finish_reason == "length"
    events = list(
        client(url).completions.create(
            model="tiny", prompt="one two three", max_tokens=6, temperature=0, stream=True,
            stream_options={"include_usage": True}, extra_body=IGNORE_EOS,
        )
    )  # fmt: skip
    # vLLM may put several tokens in one event when its output queue backs up
    assert 1 <= len([e for e in events if e.choices]) <= 6
    assert events[-2].choices[0].finish_reason == "length"
    assert events[-1].usage is not None and events[-1].usage.completion_tokens == 6


def _url_of(fleet: VllmFleet, gateway_url: str, endpoint_id: str) -> str:
    from tests.vllm.helpers import endpoints

    for replica_url, view in endpoints(gateway_url).items():
        if view["id"] == endpoint_id:
            return replica_url
    raise AssertionError(f"no replica {endpoint_id} in {fleet.urls}")
