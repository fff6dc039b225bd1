"""Structured access log: one JSON line per request, never prompt text.

Lines are buffered and flushed at most every ``flush_interval_s`` or when
64 KiB accumulate, so logging costs a dict and one ``orjson.dumps`` per request.
"""

from __future__ import annotations

import sys
from typing import IO, Any

import orjson

FLUSH_BYTES = 64 * 1024


class AccessLog:
    def __init__(self, destination: str):
        self._file: IO[bytes] | None
        self._owned = False
        if destination == "off":
            self._file = None
        elif destination == "-":
            self._file = sys.stdout.buffer
        else:
            self._file = open(destination, "ab")  # noqa: SIM115 - closed in close()
            self._owned = True
        self._buffer: list[bytes] = []
        self._buffered_bytes = 0

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        self._buffer.append(line)
        self._buffered_bytes += len(line)
        if self._buffered_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._file is None or not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered_bytes = 0
        try:
            self._file.write(data)
            self._file.flush()
        except OSError as exc:  # a full disk must not take the gateway down
            print(f"gpufleet: access log write failed: {exc}", file=sys.stderr)

    def close(self) -> None:
        self.flush()
        if self._owned and self._file is not None:
            self._file.close()
        self._file = None
