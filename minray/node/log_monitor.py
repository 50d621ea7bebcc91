"""Streams workers' output to drivers, prefixed with the task name and pid.

Each worker writes stdout and stderr to its own files in the session
directory. Before running a task with a new name it writes a marker line
(``\\x1e<name>``); the monitor reads new bytes from every file on each poll,
tracks the current name per file and emits ``[pid, name, is_stderr, text]``.

The node's memory stays bounded whatever a worker writes: each poll reads at
most :data:`READ_MAX_BYTES` of a file (the rest waits for the next poll), and a
line that grows past that without a newline is passed on in pieces of that
size, not kept whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MARKER = "\x1e"
#: bytes read from one file per poll, and the longest piece of a line kept unsent
READ_MAX_BYTES = 4 * 1024 * 1024


@dataclass
class _Tail:
    pid: int
    is_stderr: bool
    offset: int = 0
    name: str = ""
    partial: bytes = b""


class LogMonitor:
    def __init__(self) -> None:
        self._files: dict[str, _Tail] = {}

    def add(self, path: str, pid: int, is_stderr: bool) -> None:
        self._files[path] = _Tail(pid, is_stderr)

    def remove(self, path: str) -> list:
        """Stop following ``path``, returning its last lines (including a partial one)."""
        lines = self._read(path, self._files.get(path), final=True)
        self._files.pop(path, None)
        return lines

    def poll(self) -> list:
        lines: list = []
        for path, tail in list(self._files.items()):
            lines += self._read(path, tail)
        return lines

    def _read(self, path: str, tail: _Tail | None, final: bool = False) -> list:
        if tail is None:
            return []
        try:
            if os.stat(path).st_size <= tail.offset and not (final and tail.partial):
                return []
            with open(path, "rb") as f:
                f.seek(tail.offset)
                data = f.read() if final else f.read(READ_MAX_BYTES)
        except FileNotFoundError:
            return []
        tail.offset += len(data)
        data = tail.partial + data
        chunks = data.split(b"\n")
        last = chunks.pop()  # after the last newline: a partial line, or b""
        if final and last:
            chunks.append(last)
        tail.partial = b"" if final else last
        if len(tail.partial) >= READ_MAX_BYTES:  # no newline in sight: send what there is
            chunks.append(tail.partial)
            tail.partial = b""
        out = []
        for raw in chunks:
            text = raw.decode("utf-8", errors="replace")
            if text.startswith(MARKER):
                tail.name = text[1:]
                continue
            out.append([tail.pid, tail.name or "worker", tail.is_stderr, text])
        return out
