"""Deterministic prompt rendering. Pure.

Prompts are rendered canonically (chat messages as ``<|role|>content`` lines),
so equal conversation prefixes render to equal text prefixes; the engine
model's approximate tokenizer then turns equal text prefixes into equal token
prefixes, which is what makes prefix caching behave as in vLLM.
"""

from __future__ import annotations

from typing import Any


def render_chat(messages: list[dict[str, Any]]) -> str:
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        parts.append(f"<|{message.get('role', 'user')}|>{content or ''}\n")
    parts.append("<|assistant|>")
    return "".join(parts)


def render_prompt(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        return "".join(prompt)
    return ""
