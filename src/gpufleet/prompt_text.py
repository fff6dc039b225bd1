"""Canonical prompt text of a request: what prefix caching and prefix routing key on. Pure.

Prompts are rendered canonically (chat messages as ``<|role|>content`` lines),
so equal conversation prefixes render to equal text prefixes; the engine
model's approximate tokenizer then turns equal text prefixes into equal token
prefixes, which is what makes prefix caching behave as in vLLM.
"""

from __future__ import annotations

from typing import Any


def render_chat(messages: list[Any]) -> str:
    parts = []
    for message in messages:
        if not isinstance(message, dict):
            continue
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


def request_prompt_text(kind: str, body: dict[str, Any]) -> str:
    """The canonical prompt of a chat/completions/embeddings body ("" when not text)."""
    if kind == "chat":
        messages = body.get("messages")
        return render_chat(messages) if isinstance(messages, list) else ""
    return render_prompt(body.get("prompt") if kind == "completions" else body.get("input"))
