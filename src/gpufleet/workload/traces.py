"""Trace files: the Azure LLM inference trace CSV and ShareGPT-style conversation JSON.

The only module of ``workload`` that touches files: `load_azure_csv` and
`load_sharegpt_json` read a path and hand the text to the pure parsers
`parse_azure_csv` and `parse_sharegpt_json`. Errors are ``TraceError`` (a
``ValueError``) naming the file and the line or entry: ``trace.csv: line 3:
ContextTokens must be an integer ≥ 0``.

Azure format (github.com/Azure/AzurePublicDataset, 2023 and 2024 LLM traces)::

    TIMESTAMP,ContextTokens,GeneratedTokens
    2023-11-16 18:15:46.6805900,374,44

Arrival times are seconds since the first record (records are sorted by
time; the header's column names are matched case-insensitively, extra columns
are ignored). ShareGPT format: a JSON list of ``{"id": ..., "conversations":
[{"from": "human"|"gpt"|"system", "value": text}, ...]}`` (``role``/``content``
keys and ``user``/``assistant`` roles are accepted too).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from gpufleet.workload.spec import Message

_ROLES = {
    "human": "user", "user": "user", "system": "system",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bard": "assistant",
}  # fmt: skip


class TraceError(ValueError):
    """A trace file cannot be read; the message names the file and where."""


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One request of a length trace: arrival (s since the first), prompt and output tokens."""

    arrival_s: float
    num_prompt_tokens: int
    num_output_tokens: int


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation of a conversation dataset, messages in order."""

    id: str
    messages: tuple[Message, ...] = field(repr=False)


def parse_azure_csv(text: str, source: str = "<trace>") -> list[TraceRecord]:
    """Records of an Azure LLM trace CSV, sorted by arrival, the first at 0 s."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None:
        raise TraceError(f"{source}: empty file")
    names = [name.strip().lower() for name in header]
    wanted = ("timestamp", "contexttokens", "generatedtokens")
    if missing := [name for name in wanted if name not in names]:
        raise TraceError(f"{source}: line 1: missing column(s) {', '.join(missing)}")
    at, prompt, output = (names.index(name) for name in wanted)
    parsed: list[tuple[datetime, int, int]] = []
    for number, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            stamp = datetime.fromisoformat(row[at].strip())
            tokens = int(row[prompt]), int(row[output])
        except (ValueError, IndexError):
            raise TraceError(
                f"{source}: line {number}: expected TIMESTAMP,ContextTokens,GeneratedTokens "
                f"(an ISO time and two integers), got {','.join(row)[:80]!r}"
            ) from None
        if min(tokens) < 0:
            raise TraceError(f"{source}: line {number}: token counts must be ≥ 0")
        parsed.append((stamp, *tokens))
    if not parsed:
        raise TraceError(f"{source}: no records")
    parsed.sort(key=lambda row: row[0])
    first = parsed[0][0]
    return [TraceRecord((t - first).total_seconds(), p, o) for t, p, o in parsed]


def parse_sharegpt_json(text: str, source: str = "<dataset>") -> list[Conversation]:
    """Conversations of a ShareGPT-style JSON list; entries without messages are skipped."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{source}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, list):
        raise TraceError(f"{source}: expected a JSON list of conversations")
    conversations = []
    for number, entry in enumerate(data):
        turns = entry.get("conversations") if isinstance(entry, dict) else None
        if not isinstance(turns, list):
            raise TraceError(f"{source}: entry {number}: no 'conversations' list")
        messages = []
        for turn in turns:
            if not isinstance(turn, dict):
                raise TraceError(f"{source}: entry {number}: a turn is not an object")
            role = _ROLES.get(str(turn.get("from", turn.get("role", ""))).lower())
            content = turn.get("value", turn.get("content"))
            if role is None or not isinstance(content, str):
                raise TraceError(f"{source}: entry {number}: a turn needs a known role and text")
            messages.append(Message(role, content))
        if messages:
            conversations.append(Conversation(str(entry.get("id", number)), tuple(messages)))
    if not conversations:
        raise TraceError(f"{source}: no conversations")
    return conversations


def load_azure_csv(path: str | Path) -> list[TraceRecord]:
    """`parse_azure_csv` of the file at ``path``."""
    return parse_azure_csv(_read(path), str(path))


def load_sharegpt_json(path: str | Path) -> list[Conversation]:
    """`parse_sharegpt_json` of the file at ``path``."""
    return parse_sharegpt_json(_read(path), str(path))


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TraceError(f"{path}: cannot read: {reason}") from None
