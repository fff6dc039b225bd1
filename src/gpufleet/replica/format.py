"""vLLM 0.32-shaped response bodies (see shared/fixtures/vllm-0.32.0-cpu). Pure."""

from __future__ import annotations

from typing import Any

import orjson

FINGERPRINT = "vllm-0.32.0-gpufleet-sim"


def chat_response(
    request_id: str,
    created: int,
    model: str,
    texts: list[str],
    finish_reasons: list[str],
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
) -> bytes:
    choices: list[dict[str, Any]] = [
        {
            "index": i,
            "message": {
                "role": "assistant", "content": text, "refusal": None, "annotations": None,
                "audio": None, "function_call": None, "tool_calls": [], "reasoning": None,
            },
            "logprobs": None, "finish_reason": finish_reasons[i], "stop_reason": None,
            "token_ids": None,
        }
        for i, text in enumerate(texts)
    ]  # fmt: skip
    extra = {"prompt_logprobs": None, "prompt_token_ids": None}
    body = _response(request_id, "chat.completion", created, model, choices, extra)
    return _dump(body, prompt_tokens, completion_tokens, cached_tokens)


def completion_response(
    request_id: str,
    created: int,
    model: str,
    texts: list[str],
    finish_reasons: list[str],
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
) -> bytes:
    choices = [
        {
            "index": i, "text": text, "logprobs": None, "finish_reason": finish_reasons[i],
            "stop_reason": None, "prompt_logprobs": None, "prompt_token_ids": None,
            "token_ids": None,
        }
        for i, text in enumerate(texts)
    ]  # fmt: skip
    body = _response(request_id, "text_completion", created, model, choices, {})
    return _dump(body, prompt_tokens, completion_tokens, cached_tokens)


def _response(
    request_id: str,
    object_name: str,
    created: int,
    model: str,
    choices: list[dict[str, Any]],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The envelope vLLM wraps around choices (usage is added by ``_dump``)."""
    return {
        "id": request_id,
        "object": object_name,
        "created": created,
        "model": model,
        "choices": choices,
        "service_tier": None,
        "system_fingerprint": FINGERPRINT,
        "usage": None,
        **extra,
        "kv_transfer_params": None,
    }


def _dump(body: dict[str, Any], prompt: int, completion: int, cached: int) -> bytes:
    body["usage"] = usage(prompt, completion, cached)
    return orjson.dumps(body)


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


def chat_chunk(
    request_id: str,
    created: int,
    model: str,
    index: int,
    content: str,
    finish_reason: str | None,
    first: bool = False,
) -> bytes:
    delta: dict[str, Any] = {"role": "assistant", "content": content} if first else {}
    if not first:
        delta["content"] = content
    choice: dict[str, Any] = {
        "index": index,
        "delta": delta,
        "logprobs": None,
        "finish_reason": finish_reason,
    }
    if finish_reason is not None:
        choice["stop_reason"] = None
    return sse(
        {
            "id": request_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
        }
    )


def completion_chunk(
    request_id: str,
    created: int,
    model: str,
    index: int,
    text: str,
    finish_reason: str | None,
) -> bytes:
    return sse(
        {
            "id": request_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": index,
                    "text": text,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                    "stop_reason": None,
                }
            ],
        }
    )


def usage_chunk(
    request_id: str,
    created: int,
    model: str,
    object_name: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
) -> bytes:
    return sse(
        {
            "id": request_id,
            "object": object_name,
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage(prompt_tokens, completion_tokens, cached_tokens),
        }
    )


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


DONE = b"data: [DONE]\n\n"


def error(message: str, error_type: str, status: int, param: str | None = None) -> bytes:
    """vLLM's error body: ``{"error": {message, type, param, code}}`` with the status as code."""
    return orjson.dumps(
        {"error": {"message": message, "type": error_type, "param": param, "code": status}}
    )
