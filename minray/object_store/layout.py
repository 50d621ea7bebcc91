"""Layout of one object in a shared-memory segment (pure; no I/O).

::

    offset 0   header: magic "MRO1", buffer count, pickle offset, pickle length,
               then (offset, length) for each out-of-band buffer
    ...        the pickle-5 stream
    ...        each buffer, starting on a 64-byte boundary

Buffers are aligned so numpy (and SIMD code) can use them in place: the reader
passes memoryview slices of the mapping to ``pickle.loads(buffers=...)`` and
gets arrays backed by shared memory, without a copy.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

MAGIC = b"MRO1"
ALIGN = 64
_FIXED = struct.Struct("<4sIQQ")
_BUF = struct.Struct("<QQ")


class LayoutError(ValueError):
    """The segment does not hold a valid minray object."""


class Layout(NamedTuple):
    total_size: int
    pickle_offset: int
    pickle_length: int
    buffers: tuple  #: ((offset, length), ...)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(pickle_length: int, buffer_lengths: list[int]) -> Layout:
    header = _FIXED.size + _BUF.size * len(buffer_lengths)
    pos = header + pickle_length
    buffers = []
    for length in buffer_lengths:
        pos = _align(pos)
        buffers.append((pos, length))
        pos += length
    return Layout(max(pos, 1), header, pickle_length, tuple(buffers))


def pack_header(layout: Layout) -> bytes:
    parts = [_FIXED.pack(MAGIC, len(layout.buffers), layout.pickle_offset, layout.pickle_length)]
    parts.extend(_BUF.pack(offset, length) for offset, length in layout.buffers)
    return b"".join(parts)


def read_header(mem) -> Layout:
    """Parse the header at the start of ``mem`` (bytes-like), checking every bound."""
    size = len(mem)
    if size < _FIXED.size:
        raise LayoutError("segment too small for a header")
    magic, count, p_off, p_len = _FIXED.unpack_from(mem, 0)
    if magic != MAGIC:
        raise LayoutError("segment does not start with the minray magic")
    if _FIXED.size + count * _BUF.size > size or p_off + p_len > size:
        raise LayoutError("header points outside the segment")
    buffers = []
    for i in range(count):
        offset, length = _BUF.unpack_from(mem, _FIXED.size + i * _BUF.size)
        if offset + length > size:
            raise LayoutError("buffer points outside the segment")
        buffers.append((offset, length))
    return Layout(size, p_off, p_len, tuple(buffers))
