"""The pure part of stream resumption: what is resumable, progress, continuations."""

from __future__ import annotations

import json

import pytest

from gpufleet.gateway.resumption import (
    StreamProgress,
    continuation_body,
    length_finish_event,
    not_resumable,
)


def sse(*events: dict[str, object]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


def chat_chunk(content: str | None, role: bool = False, finish: str | None = None) -> dict:
    delta: dict[str, object] = {"content": content}
    if role:
        delta["role"] = "assistant"
    return {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "body", "reason"),
    [
        ("chat", {"messages": [{"role": "user", "content": "x"}]}, None),
        ("chat", {"messages": [{"role": "user", "content": "x"}], "n": 2}, "n > 1"),
        ("chat", {"messages": [{"role": "user", "content": "x"}], "logprobs": True}, "logprobs"),
        ("chat", {"messages": [{"role": "user", "content": "x"}], "tools": [{}]}, "tool calls"),
        ("chat", {"messages": []}, "no messages"),
        ("completions", {"prompt": "x"}, None),
        ("completions", {"prompt": [1, 2]}, "prompt is not a single string"),
        ("completions", {"prompt": "x", "echo": True}, "echo or suffix"),
        ("embeddings", {"input": "x"}, "not a generation request"),
    ],
)
def test_what_is_resumable(kind: str, body: dict, reason: str | None) -> None:
    found = not_resumable(kind, body)
    assert found == reason or (reason is not None and found is not None and reason in found)


def test_progress_counts_tokens_and_text_but_not_the_role_chunk() -> None:
    progress = StreamProgress("chat")
    out = progress.relay(sse(chat_chunk("", role=True), chat_chunk("Hel"), chat_chunk("lo")))
    assert out.count(b"data: ") == 3  # relayed untouched before a resume
    assert (progress.text, progress.num_events, progress.response_id) == ("Hello", 2, "chatcmpl-1")
    assert not progress.finished


def test_chat_continuation_appends_the_partial_message_and_reduces_max_tokens() -> None:
    progress = StreamProgress("chat")
    progress.relay(sse(chat_chunk("", role=True), chat_chunk("Hel"), chat_chunk("lo")))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10,
            "stream": True}  # fmt: skip
    resumed = continuation_body("chat", body, progress, progress.num_events)
    assert resumed is not None
    assert resumed["messages"][-1] == {"role": "assistant", "content": "Hello"}
    assert resumed["continue_final_message"] is True
    assert resumed["add_generation_prompt"] is False
    assert resumed["max_tokens"] == 8
    assert resumed["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "hi"}]  # the original is untouched


def test_completion_continuation_uses_the_default_max_tokens() -> None:
    progress = StreamProgress("completions")
    choice = {"index": 0, "text": " a", "finish_reason": None}
    event = {"id": "cmpl-1", "created": 1, "choices": [choice]}
    progress.relay(sse(event, event, event))
    resumed = continuation_body("completions", {"prompt": "x"}, progress, 3)
    assert resumed is not None
    assert resumed["prompt"] == "x a a a"
    assert resumed["max_tokens"] == 16 - 3


def test_nothing_to_continue_after_the_last_token_or_a_finish() -> None:
    progress = StreamProgress("chat")
    progress.relay(sse(chat_chunk("a"), chat_chunk("b")))
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    assert continuation_body("chat", body, progress, 2) is None
    finished = StreamProgress("chat")
    finished.relay(sse(chat_chunk("a", finish="stop")))
    assert continuation_body("chat", {"messages": body["messages"]}, finished, 1) is None
    closing = json.loads(length_finish_event("chat", progress, "m")[6:])
    assert closing["id"] == "chatcmpl-1" and closing["choices"][0]["finish_reason"] == "length"


def test_continuation_events_are_rewritten_into_the_original_stream() -> None:
    progress = StreamProgress("chat")
    progress.relay(sse(chat_chunk("", role=True), chat_chunk("a"), chat_chunk("b")))
    progress.begin_resume(2)
    other = {**chat_chunk("", role=True), "id": "chatcmpl-2", "created": 99}
    token = {**chat_chunk("c", finish="length"), "id": "chatcmpl-2", "created": 99}
    counts = {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}
    usage = {"id": "chatcmpl-2", "created": 99, "choices": [], "usage": counts}
    out = progress.relay(sse(other, token, usage) + b"data: [DONE]\n\n")
    events = [e for e in out.decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    parsed = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert len(parsed) == 2  # the continuation's role-only chunk is dropped
    assert {p["id"] for p in parsed} == {"chatcmpl-1"} and {p["created"] for p in parsed} == {7}
    assert parsed[1]["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    assert progress.text == "abc" and progress.num_events == 3 and progress.finished
