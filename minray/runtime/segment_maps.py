"""This process's mappings of shared-memory segments.

*Readable* mappings are pinned at the node before they are made and unpinned
when the last array (or other buffer) backed by them is garbage, so the node
never reuses a segment someone still reads. One mapping per segment is shared
by every ``get`` of that object while it is alive.

A segment this process reserved stays pinned for it until it has written the
object; ``done_writing`` notes that, and the next reservation tells the node
(``take_written``), or the node asks when its store is full (FlushWritten).

*Writable* mappings of segments this process wrote are kept (up to
``max_writable``) so that when the node hands one back for a new object, the
write is a plain memory copy: no mmap, no page faults. The node tells every
process when it unlinks a segment (``SegmentsRemoved``); its kept mapping is
dropped then, so it never holds memory the store no longer counts.
"""

from __future__ import annotations

import collections
import mmap
import threading
import weakref
from collections.abc import Callable

from ..object_store import shm
from ..protocol.messages import PinSegments, UnpinSegments


class SegmentMaps:
    def __init__(self, send_to_node: Callable, max_writable: int = 16):
        self._send = send_to_node
        self._lock = threading.Lock()
        self._readable: weakref.WeakValueDictionary[str, mmap.mmap] = weakref.WeakValueDictionary()
        self._writable: collections.OrderedDict[str, mmap.mmap] = collections.OrderedDict()
        self.max_writable = max_writable
        self._written: list[str] = []  # reserved by us, written: the node may unpin them

    def readable(self, name: str, node_id: bytes | None = None, pinned: bool = False) -> mmap.mmap:
        """A read-only mapping of the segment, pinned (at the node ``node_id`` that
        accounts for it; default: this process's) while anything uses it. ``pinned``:
        the node pinned it for us already (a restore's answer)."""
        with self._lock:
            mem = self._readable.get(name)
            if mem is not None:
                if pinned:  # one pin per mapping: give the extra one back
                    self._send(UnpinSegments([name]), node_id)
                return mem
            if not pinned:
                self._send(PinSegments([name]), node_id)
            try:
                mem = shm.open_readonly(name)
            except BaseException:
                self._send(UnpinSegments([name]), node_id)
                raise
            weakref.finalize(mem, self._send, UnpinSegments([name]), node_id)
            self._readable[name] = mem
            return mem

    def writable(self, name: str, size: int, reused: bool) -> mmap.mmap:
        """A writable mapping of a segment the node just reserved for a new object."""
        with self._lock:
            mem = self._writable.pop(name, None)
            if mem is None or len(mem) < size:
                mem = shm.open_writable(name) if reused else shm.create(name, size)
            self._writable[name] = mem
            while len(self._writable) > self.max_writable:
                _, old = self._writable.popitem(last=False)
                old.close()
            return mem

    def done_writing(self, name: str) -> None:
        """This process finished writing (or gave up on) a segment it reserved."""
        with self._lock:
            self._written.append(name)

    def take_written(self) -> list[str]:
        """The segments written since the last call, for the node to unpin."""
        with self._lock:
            written, self._written = self._written, []
            return written

    def forget(self, names: list[str]) -> None:
        """The node unlinked these segments: drop our writable mappings of them."""
        with self._lock:
            for name in names:
                mem = self._writable.pop(name, None)
                if mem is not None:
                    mem.close()

    def forget_all(self) -> None:
        with self._lock:
            for mem in self._writable.values():
                mem.close()
            self._writable.clear()
