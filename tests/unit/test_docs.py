"""The documentation tells the truth: every ``gpufleet COMMAND --flag`` mentioned in
README.md and docs/*.md exists in the command-line parser, every relative link points at a
file that exists, and every code block marked runnable runs (docs/CONTRIBUTING.md has the
conventions: ``<!-- runnable -->`` and ``<!-- file: NAME -->`` before a fenced block)."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpufleet.cli import build_parser

ROOT = Path(__file__).parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")])
FENCE = re.compile(r"^(`{3,}|~{3,})\s*(.*)$")
MARKER = re.compile(r"^<!--\s*(runnable|file:\s*(\S+))\s*-->\s*$")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SHELL_LANGUAGES = {"sh", "bash", "shell", "console", "zsh"}
SEPARATORS = {"|", "||", "&&", ";", "&", ">", ">>", "2>", "2>&1", "<"}
GLOBAL_OPTIONS = {"-h", "--help", "--version", "-v", "--verbose", "-q", "--quiet"}
WRAPPERS = {"-m", "sudo", "time", "exec", "nohup", "command"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
BLOCK_TIMEOUT_S = 180


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    text: str
    marker: str | None
    """'runnable', 'file:NAME' or None (from the HTML comment right before the fence)."""


def relative(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, info = opening.groups()
        previous = lines[index - 1] if index else ""
        marked = MARKER.match(previous)
        marker = None
        if marked:
            marker = "runnable" if marked.group(1) == "runnable" else f"file:{marked.group(2)}"
        end = index + 1
        while end < len(lines) and not (
            lines[end].startswith(fence) and not lines[end][len(fence) :].strip()
        ):
            end += 1
        words = info.split()
        blocks.append(
            Block(page, index + 1, words[0] if words else "", "\n".join(lines[index + 1 : end]),
                  marker)
        )  # fmt: skip
        index = end + 1
    return blocks


def command_lines(page: Path) -> list[tuple[int, str, bool]]:
    """(line number, text, in a shell block) of what the page shows as commands: inline
    code that starts with ``gpufleet``, the ``$ ``-prompted lines of any block, and every
    line of a shell block without prompts. Continuation lines (trailing backslash) are
    joined."""
    found: list[tuple[int, str, bool]] = []
    text = page.read_text(encoding="utf-8")
    fence = ""  # the opening fence of the block we are in ("" outside)
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if opening and not fence:
            fence = opening.group(1)
            continue
        if fence and line.startswith(fence) and not line[len(fence) :].strip():
            fence = ""
            continue
        if not fence:
            for code in INLINE_CODE.findall(line):
                if re.match(r"(\S*/)?gpufleet\s", code):
                    found.append((number, code, False))
    for block in blocks_of(page):
        lines = block.text.replace("\\\n", " ").splitlines()
        prompted = [line[2:] for line in lines if line.startswith("$ ")]
        if prompted:
            found.extend((block.line, line, True) for line in prompted)
        elif block.language in SHELL_LANGUAGES:
            found.extend((block.line, line, True) for line in lines)
    return found


def invocations(line: str) -> list[list[str]]:
    """The argument lists of every ``gpufleet`` invocation in one shell line: ``gpufleet``
    (or ``path/to/gpufleet``) in command position — first in its pipeline segment, after
    ``VAR=value`` assignments or a wrapper (``python -m``, ``sudo``, ``time``, ``exec``)."""
    tokens = line.replace("\\|", " ").split()
    out: list[list[str]] = []
    current: list[str] | None = None
    position = 0  # tokens seen in this segment
    previous = ""
    for token in tokens:
        if token.startswith("#"):
            break
        if token in SEPARATORS or token == "$":
            current, position, previous = None, 0, ""
            continue
        program = token == "gpufleet" or token.endswith("/gpufleet")
        leading = position == 0 or previous in WRAPPERS or ASSIGNMENT.match(previous) is not None
        if program and leading and current is None:
            current = []
            out.append(current)
        elif current is not None:
            current.append(token)
        position += 1
        previous = token
    return out


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def problems_in(page: Path) -> list[str]:
    commands = subparsers()
    problems = []
    for number, line, shell in command_lines(page):
        for args in invocations(line):
            where = f"{relative(page)}:{number}: `{line.strip()}`"
            words = [a for a in args if a not in GLOBAL_OPTIONS]
            if not words or words[0] in ("...", "…"):
                continue
            command = words[0].strip("[](){}")
            if command.startswith("-"):
                problems.append(f"{where}: unknown global option {command}")
                continue
            if command not in commands:
                # prose in inline code ("gpufleet gateway is OPEN: ...") is no invocation;
                # a flag, a prompt or a shell block makes it one
                looks_invoked = shell or len(words) == 1 or any(w.startswith("-") for w in words)
                if re.match(r"^[a-z][a-z0-9-]*$", command) and looks_invoked:
                    problems.append(f"{where}: no command `gpufleet {command}`")
                continue
            known = options_of(commands[command]) | GLOBAL_OPTIONS
            for word in words[1:]:
                flag = word.strip("[](){},'\"").split("=", 1)[0]
                if re.match(r"^--?[A-Za-z]", flag) and flag not in known:
                    problems.append(f"{where}: `gpufleet {command}` has no option {flag}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_commands_and_flags_mentioned_exist(page: Path) -> None:
    assert problems_in(page) == []


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if path and not (page.parent / path).exists():
            broken.append(target)
    assert broken == []


def test_the_checker_finds_wrong_mentions(tmp_path: Path) -> None:
    """The check itself can fail: a made-up command, a made-up flag and a broken link."""
    page = tmp_path / "bad.md"
    page.write_text(
        "Run `gpufleet autoscale --fast` or:\n\n```sh\ngpufleet sim -c f.yaml --warp 9 "
        "| tee out\n.venv/bin/gpufleet render -c f.yaml --target k8s -o out\n"
        "kubectl -n gpufleet get pods -o wide && helm uninstall gpufleet -n gpufleet\n```\n"
        "\n```\n$ gpufleet plan -i plan.yaml --budget 3\nplan output gpufleet is up\n```\n"
    )
    problems = problems_in(page)
    assert len(problems) == 3, problems
    assert "no command `gpufleet autoscale`" in problems[0]
    assert "`gpufleet sim` has no option --warp" in problems[1]
    assert "`gpufleet plan` has no option --budget" in problems[2]


def runnable_pages() -> list[Path]:
    return [page for page in PAGES if any(b.marker == "runnable" for b in blocks_of(page))]


def test_some_blocks_are_runnable() -> None:
    assert len(runnable_pages()) >= 2


@pytest.mark.parametrize("page", runnable_pages(), ids=relative)
def test_runnable_blocks_run(page: Path, tmp_path: Path) -> None:
    """The page's runnable blocks run in order in one fresh directory (``examples/`` linked
    into it, the venv's ``gpufleet`` first on PATH), after the files it declares are
    written; each must exit 0."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for block in blocks_of(page):
        if block.marker and block.marker.startswith("file:"):
            (tmp_path / block.marker.removeprefix("file:")).write_text(block.text + "\n")
        elif block.marker == "runnable":
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block.text],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S,
            )  # fmt: skip
            assert done.returncode == 0, (
                f"{relative(page)}:{block.line} exited {done.returncode}\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
