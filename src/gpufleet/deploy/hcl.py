"""A minimal HCL writer whose output ``terraform fmt`` leaves unchanged.

Contract: ``render_body(items)`` writes attributes, blocks, blank lines and comments
with two-space indentation and ``terraform fmt``'s alignment rule: the ``=`` of
consecutive single-line attributes (and object entries) line up; a blank line, a
comment, a block or an attribute whose value spans lines ends the run. Values are
Python scalars, lists, dicts (objects, multi-line) or `Raw` expressions written as is.
Strings are quoted with HCL escapes (including ``${`` and ``%{``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_MAX_INLINE_LIST = 80
INDENT = "  "


@dataclass(frozen=True)
class Raw:
    """An HCL expression written verbatim (references, function calls)."""

    text: str


Value: TypeAlias = str | int | float | bool | Raw | Sequence["Value"] | Mapping[str, "Value"]


@dataclass(frozen=True)
class Attr:
    name: str
    value: Value


@dataclass(frozen=True)
class Block:
    type: str
    labels: tuple[str, ...]
    body: tuple[Item, ...]


@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class Blank:
    pass


Item: TypeAlias = Attr | Block | Comment | Blank
BLANK = Blank()


def block(type_: str, *labels: str, body: Sequence[Item] = ()) -> Block:
    return Block(type_, labels, tuple(body))


def render_file(items: Sequence[Item]) -> str:
    """A whole .tf file (top-level items separated as given, trailing newline)."""
    return "".join(render_body(items, 0))


def render_body(items: Sequence[Item], depth: int) -> list[str]:
    lines: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(key) for key, _ in run), default=0)
        lines.extend(f"{INDENT * depth}{key.ljust(width)} = {text}\n" for key, text in run)
        run.clear()

    for item in items:
        if isinstance(item, Attr):
            text = value_text(item.value, depth)
            if "\n" in text:
                flush()
                lines.append(f"{INDENT * depth}{item.name} = {text}\n")
            else:
                run.append((item.name, text))
            continue
        flush()
        if isinstance(item, Blank):
            lines.append("\n")
        elif isinstance(item, Comment):
            lines.append(
                f"{INDENT * depth}# {item.text}\n" if item.text else f"{INDENT * depth}#\n"
            )
        else:
            header = " ".join([item.type, *(quote(label) for label in item.labels)])
            lines.append(f"{INDENT * depth}{header} {{\n")
            lines.extend(render_body(item.body, depth + 1))
            lines.append(f"{INDENT * depth}}}\n")
    flush()
    return lines


def value_text(value: Value, depth: int) -> str:
    """The expression text; multi-line values end with the closing bracket at ``depth``."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        entries = [Attr(key if _IDENT.match(key) else quote(key), v) for key, v in value.items()]
        inner = "".join(render_body(entries, depth + 1))
        return "{\n" + inner + INDENT * depth + "}"
    items = [value_text(v, depth + 1) for v in value]
    inline = "[" + ", ".join(items) + "]"
    if all("\n" not in i for i in items) and len(inline) <= _MAX_INLINE_LIST:
        return inline
    inner = "".join(f"{INDENT * (depth + 1)}{i},\n" for i in items)
    return "[\n" + inner + INDENT * depth + "]"


def quote(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("${", "$${")
        .replace("%{", "%%{")
    )
    return f'"{escaped}"'
