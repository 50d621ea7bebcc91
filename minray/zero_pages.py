"""Give back the pages of a fresh object that hold only zeros.

An object the allocator zero-fills when it is created (``PyType_GenericAlloc``
clears all of it) keeps every page of it in memory, written, though most of it
may never be used: uvloop's event loop is such an object, 250 KiB, almost all of
it a receive buffer, in every process that runs a loop. On Linux,
``madvise(MADV_DONTNEED)`` on a private anonymous page drops it; the next read
of that page sees zeros again, and the next write gets a fresh page. So for a
page that holds only zeros, nothing a program can see changes, and the memory
comes back until the page is written.

Only safe while no other thread can write the object, that is, right after it
was made and before anything else holds it (``_loop.new_event_loop``).
"""

from __future__ import annotations

import ctypes
import mmap
import sys

PAGE = mmap.PAGESIZE
_ZEROS = bytes(PAGE)
_MADV_DONTNEED = 4
_madvise = None
if sys.platform.startswith("linux"):
    try:
        _madvise = ctypes.CDLL(None, use_errno=True).madvise
        _madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        _madvise.restype = ctypes.c_int
    except (OSError, AttributeError):  # pragma: no cover - a libc without madvise
        _madvise = None


def zero_page_runs(memory: memoryview, base: int) -> list[tuple[int, int]]:
    """(address, length) of each run of whole pages of ``memory`` (which starts at
    address ``base``) that hold only zeros. Pages that ``memory`` covers only in part
    are left out."""
    first = -base % PAGE
    runs: list[tuple[int, int]] = []
    start = -1
    offset = first
    while offset + PAGE <= len(memory):
        if memory[offset : offset + PAGE] == _ZEROS:
            if start < 0:
                start = offset
        elif start >= 0:
            runs.append((base + start, offset - start))
            start = -1
        offset += PAGE
    if start >= 0:
        runs.append((base + start, offset - start))
    return runs


def release_zero_pages(obj: object) -> int:
    """Drop the whole pages inside ``obj``'s memory (from ``id(obj)``, its type's basic
    size long) that hold only zeros; returns how many bytes were given back (0 where
    ``madvise`` is not there: not Linux, or not CPython's object layout)."""
    if _madvise is None or sys.implementation.name != "cpython":
        return 0
    size = type(obj).__basicsize__
    if size < 2 * PAGE:
        return 0
    base = id(obj)
    memory = memoryview((ctypes.c_char * size).from_address(base)).cast("B")
    released = 0
    for address, length in zero_page_runs(memory, base):
        if _madvise(address, length, _MADV_DONTNEED) == 0:
            released += length
    return released
