"""Stream resumption: continue a stream cut mid-way on another replica.

When a replica dies (or is stopped at the end of a drain notice) in the middle
of a streaming response, the client has already received some tokens. The
gateway asks another replica for the rest and splices its stream onto the
client's, so the client sees one uninterrupted, well-formed stream:

- a completion is resumed with ``prompt + text so far`` and the remaining
  ``max_tokens``;
- a chat completion with the partial assistant message appended and
  ``continue_final_message: true, add_generation_prompt: false`` (vLLM's
  continuation of a final assistant message);
- the continuation's events are rewritten to the original ``id`` and
  ``created``; its role-only first chat chunk is dropped;
- the tokens already streamed are counted by the continuing replica's
  ``POST /tokenize`` of the partial text (vLLM coalesces several tokens into
  one event when its output queue backs up, so events are not tokens); an
  engine without ``/tokenize`` falls back to counting events;
- usage: ``completion_tokens`` = tokens before the cut + the continuation's;
  ``prompt_tokens`` = the continuation's prompt minus the tokens before the
  cut (so it equals an uninterrupted request's, up to how the partial text
  re-tokenises at its boundary).

Only requests where the continuation can be faithful are resumable (see
`not_resumable`): one choice, no logprobs, no echo, no tool calls, a string
prompt.

`StreamProgress` is fed every relayed chunk (bytes) of a resumable stream; it
is pure (no I/O): the proxy decides when to resume. It is on the per-chunk
path of every resumable stream, so before a cut it only keeps the bytes and
parses them when asked (a cut) or when they pass ``FOLD_BYTES`` (which bounds
the memory a long stream holds).
"""

from __future__ import annotations

from typing import Any

import orjson

COMPLETIONS_DEFAULT_MAX_TOKENS = 16
"""OpenAI's (and vLLM's) default ``max_tokens`` for ``/v1/completions``."""
FOLD_BYTES = 16_384
"""Relayed bytes kept unparsed at most per stream (short streams are never parsed)."""


def not_resumable(kind: str, body: dict[str, Any]) -> str | None:
    """Why this request's stream cannot be resumed faithfully; ``None`` if it can."""
    if kind not in ("chat", "completions"):
        return "not a generation request"
    if body.get("n") not in (None, 1) or body.get("best_of") not in (None, 1):
        return "n > 1"
    if body.get("logprobs") or body.get("top_logprobs") or body.get("prompt_logprobs"):
        return "logprobs"
    if kind == "completions":
        if not isinstance(body.get("prompt"), str):
            return "prompt is not a single string"
        if body.get("echo") or body.get("suffix"):
            return "echo or suffix"
        return None
    if body.get("tools") or body.get("functions") or body.get("continue_final_message"):
        return "tool calls or an explicit continuation"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "no messages"
    return None


class StreamProgress:
    """What the client has received of one resumable stream (events observed in order)."""

    __slots__ = (
        "_created",
        "_finish_reason",
        "_num_events",
        "_parts",
        "_raw",
        "_raw_bytes",
        "_response_id",
        "_resumed",
        "_skip_role",
        "kind",
        "tokens_before_resume",
    )

    def __init__(self, kind: str):
        self.kind = kind
        self._raw: list[bytes] = []
        self._raw_bytes = 0
        self._response_id: str | None = None
        self._created: int | None = None
        self._parts: list[str] = []
        self._num_events = 0
        self._finish_reason: str | None = None
        self._resumed = False
        self._skip_role = False
        self.tokens_before_resume = 0

    @property
    def text(self) -> str:
        self._fold()
        return "".join(self._parts)

    @property
    def num_events(self) -> int:
        """Events with generated output the client has received (≥ 1 token each)."""
        self._fold()
        return self._num_events

    @property
    def finished(self) -> bool:
        """A ``finish_reason`` reached the client: nothing is left to generate."""
        return self.finish_reason is not None

    @property
    def finish_reason(self) -> str | None:
        self._fold()
        return self._finish_reason

    @property
    def response_id(self) -> str | None:
        self._fold()
        return self._response_id

    @property
    def created(self) -> int | None:
        self._fold()
        return self._created

    def begin_resume(self, tokens_sent: int) -> None:
        """The next events come from a continuation that starts after ``tokens_sent``
        tokens: rewrite them into this stream."""
        self._fold()
        self._resumed = True
        self._skip_role = self.kind == "chat"
        self.tokens_before_resume = tokens_sent

    def relay(self, events: bytes) -> bytes:
        """Observe ``events`` (whole SSE events) and return the bytes to send the client."""
        if not self._resumed:
            self._raw.append(events)
            self._raw_bytes += len(events)
            if self._raw_bytes > FOLD_BYTES:
                self._fold()
            return events
        out: list[bytes] = []
        for raw in events.split(b"\n\n"):
            if not raw.strip():
                continue
            parsed = _payload(raw)
            if parsed is None:
                out.append(raw + b"\n\n")
                continue
            rewritten = self._rewrite(parsed)
            if rewritten is not None:
                self._observe(rewritten)
                out.append(b"data: " + orjson.dumps(rewritten) + b"\n\n")
        return b"".join(out)

    # internals ------------------------------------------------------------------------
    def _fold(self) -> None:
        """Parse the bytes kept so far into text, counts and ids."""
        if not self._raw:
            return
        buffer = b"".join(self._raw)
        self._raw.clear()
        self._raw_bytes = 0
        for payload in _payloads(buffer):
            self._observe(payload)

    def _observe(self, event: dict[str, Any]) -> None:
        if self._response_id is None:
            self._response_id = event.get("id")
            self._created = event.get("created")
        choices = event.get("choices")
        if not choices:
            return
        choice = choices[0]
        if self.kind == "chat":
            delta = choice.get("delta") or {}
            if "role" not in delta:
                self._num_events += 1
            content = delta.get("content")
        else:
            self._num_events += 1
            content = choice.get("text")
        if isinstance(content, str) and content:
            self._parts.append(content)
        if choice.get("finish_reason") is not None:
            self._finish_reason = choice["finish_reason"]

    def _rewrite(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if self._response_id is not None:
            event["id"] = self._response_id
        if self._created is not None:
            event["created"] = self._created
        choices = event.get("choices")
        if self._skip_role and choices:
            delta = choices[0].get("delta") or {}
            if "role" in delta:
                self._skip_role = False
                if not delta.get("content") and choices[0].get("finish_reason") is None:
                    return None
                delta.pop("role")
        usage = event.get("usage")
        if isinstance(usage, dict):
            before = self.tokens_before_resume
            prompt = max(0, int(usage.get("prompt_tokens") or 0) - before)
            completion = int(usage.get("completion_tokens") or 0) + before
            usage["prompt_tokens"] = prompt
            usage["completion_tokens"] = completion
            usage["total_tokens"] = prompt + completion
        return event


def continuation_body(
    kind: str, body: dict[str, Any], progress: StreamProgress, sent: int
) -> dict[str, Any] | None:
    """The request that generates the rest of the stream after ``sent`` tokens;
    ``None`` when nothing is left."""
    if progress.finished:
        return None
    text = progress.text
    resumed = dict(body)
    options = dict(resumed.get("stream_options") or {})
    options["include_usage"] = True
    resumed["stream_options"] = options
    if kind == "completions":
        limit = body.get("max_tokens")
        remaining = (COMPLETIONS_DEFAULT_MAX_TOKENS if limit is None else int(limit)) - sent
        if remaining <= 0:
            return None
        resumed["prompt"] = str(body["prompt"]) + text
        resumed["max_tokens"] = remaining
    else:
        for field in ("max_completion_tokens", "max_tokens"):
            limit = body.get(field)
            if limit is not None:
                remaining = int(limit) - sent
                if remaining <= 0:
                    return None
                resumed[field] = remaining
        resumed["messages"] = [*body["messages"], {"role": "assistant", "content": text}]
        resumed["continue_final_message"] = True
        resumed["add_generation_prompt"] = False
    min_tokens = body.get("min_tokens")
    if isinstance(min_tokens, int) and min_tokens > 0:
        resumed["min_tokens"] = max(0, min_tokens - sent)
    return resumed


def length_finish_event(kind: str, progress: StreamProgress, model: str) -> bytes:
    """A closing event for a stream cut right after its last allowed token."""
    choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
    if kind == "chat":
        choice["delta"] = {}
        obj = "chat.completion.chunk"
    else:
        choice["text"] = ""
        obj = "text_completion"
    event = {
        "id": progress.response_id,
        "object": obj,
        "created": progress.created,
        "model": model,
        "choices": [choice],
    }
    return b"data: " + orjson.dumps(event) + b"\n\n"


def _payloads(events: bytes) -> list[dict[str, Any]]:
    parsed = []
    for raw in events.split(b"\n\n"):
        payload = _payload(raw)
        if payload is not None:
            parsed.append(payload)
    return parsed


def _payload(raw: bytes) -> dict[str, Any] | None:
    """The JSON object of one ``data:`` event; ``None`` for [DONE], comments, errors."""
    raw = raw.strip()
    if not raw.startswith(b"data:"):
        return None
    data = raw[5:].strip()
    if not data.startswith(b"{"):
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or "error" in value:
        return None
    return value
