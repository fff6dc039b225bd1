"""Parse and check OpenAI-style request bodies before anything is routed.

Checks are deliberately those the gateway must understand (model, stream,
the prompt's presence and shape) plus ranges that no engine accepts; every
other field passes through untouched to the engine, vLLM extras included.
Each failure is an ``InvalidRequest`` naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gpufleet.errors import InvalidRequest

KIND_CHAT = "chat"
KIND_COMPLETIONS = "completions"
KIND_EMBEDDINGS = "embeddings"
MAX_NESTING = 64


@dataclass(slots=True)
class ParsedRequest:
    kind: str
    body: dict[str, Any]
    model: str
    stream: bool
    wants_usage: bool
    """The client asked for ``stream_options.include_usage``."""
    prompt_chars: int
    max_tokens: int
    user: str | None


def parse_body(kind: str, raw: bytes) -> ParsedRequest:
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {_short(str(exc))}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    _check_depth(body)
    model = body.get("model")
    if model is None:
        raise InvalidRequest("you must provide a model parameter", param="model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be a non-empty string", param="model")
    stream = _optional_bool(body, "stream")
    wants_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise InvalidRequest("'stream_options' must be an object", param="stream_options")
        wants_usage = _optional_bool(options, "include_usage", "stream_options.include_usage")
    if kind == KIND_CHAT:
        prompt_chars = _check_messages(body)
    elif kind == KIND_COMPLETIONS:
        prompt_chars = _check_prompt(body, "prompt")
    else:
        prompt_chars = _check_prompt(body, "input")
    max_tokens = _check_sampling(body)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("'user' must be a string", param="user")
    return ParsedRequest(kind, body, model, stream, wants_usage, prompt_chars, max_tokens, user)


def _check_messages(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("'messages' is a required property", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    chars = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise InvalidRequest(
                f"messages[{i}].role must be a non-empty string", param=f"messages[{i}].role"
            )
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    chars += len(part["text"])
        elif content is not None:
            raise InvalidRequest(
                f"messages[{i}].content must be a string, an array of parts or null",
                param=f"messages[{i}].content",
            )
    return chars


def _check_prompt(body: dict[str, Any], field: str) -> int:
    prompt = body.get(field)
    if prompt is None:
        raise InvalidRequest(f"'{field}' is a required property", param=field)
    if isinstance(prompt, str):
        return len(prompt)
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return sum(len(p) for p in prompt)
        if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
            return 4 * len(prompt)
        if all(isinstance(p, list) and all(isinstance(t, int) for t in p) for p in prompt):
            return 4 * sum(len(p) for p in prompt)
    raise InvalidRequest(
        f"'{field}' must be a string, an array of strings or an array of token ids", param=field
    )


def _check_sampling(body: dict[str, Any]) -> int:
    max_tokens = 0
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None:
            if not _is_int(value) or value < 1:
                raise InvalidRequest(f"'{name}' must be an integer >= 1", param=name)
            max_tokens = value
    n = body.get("n")
    if n is not None and (not _is_int(n) or not 1 <= n <= 128):
        raise InvalidRequest("'n' must be an integer between 1 and 128", param="n")
    _check_number(body, "temperature", 0.0, 2.0)
    _check_number(body, "top_p", 0.0, 1.0)
    _check_number(body, "presence_penalty", -2.0, 2.0)
    _check_number(body, "frequency_penalty", -2.0, 2.0)
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise InvalidRequest("'stop' must be a string or an array of strings", param="stop")
        if len(stop) > 64:
            raise InvalidRequest("'stop' may hold at most 64 sequences", param="stop")
    return max_tokens


def _check_number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be a number between {low:g} and {high:g}", param=name)


def _optional_bool(body: dict[str, Any], name: str, param: str | None = None) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{param or name}' must be a boolean", param=param or name)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_depth(value: Any) -> None:
    """Reject absurdly nested JSON (orjson already refuses beyond 1024 levels)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise InvalidRequest(f"the request body is nested deeper than {MAX_NESTING} levels")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if _is_container(child))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if _is_container(child))


def _is_container(value: Any) -> bool:
    return isinstance(value, dict | list)


def _short(text: str) -> str:
    return text.splitlines()[0][:160] if text else "invalid JSON"
