"""This process's mappings of shared-memory segments.

*Readable* mappings are pinned at the node before they are made and unpinned
when the last array (or other buffer) backed by them is garbage, so the node
never reuses a segment someone still reads. One mapping per segment is shared
by every ``get`` of that object while it is alive. Where numpy is loaded, what a
reader gets is a numpy view of the mapping, and the mapping itself is *kept*
(unpinned, up to ``max_kept``) after the view is garbage: the next read of that
segment (the same argument to the next task) finds its pages mapped, where a new
mapping would fault in every 64 KiB again. A kept mapping is used only while the
segment is the same file (inode and size), and dropped when the node unlinks it.

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
import sys
import threading
import weakref
from collections.abc import Callable

from ..object_store import shm
from ..protocol.messages import PinSegments, UnpinSegments


class SegmentMaps:
    def __init__(self, send_to_node: Callable, max_writable: int = 16, max_kept: int = 8):
        self._send = send_to_node
        self._lock = threading.Lock()
        self._readable: weakref.WeakValueDictionary[str, object] = weakref.WeakValueDictionary()
        #: readable mappings no one uses now, kept for the next read: name -> (mapping, key)
        self._kept: collections.OrderedDict[str, tuple] = collections.OrderedDict()
        #: mappings whose last view just went (a finalizer adds them, on any thread, maybe
        #: inside this lock: they join _kept at the next call that holds it)
        self._released: list[tuple] = []
        self.max_kept = max_kept
        self._stopped = False  #: forget_all ran (the session ended): keep nothing more
        self._writable: collections.OrderedDict[str, mmap.mmap] = collections.OrderedDict()
        self.max_writable = max_writable
        self._written: list[str] = []  # reserved by us, written: the node may unpin them

    def readable(self, name: str, node_id: bytes | None = None, pinned: bool = False):
        """A read-only view of the segment (a mapping, or a numpy view of one), pinned (at
        the node ``node_id`` that accounts for it; default: this process's) while anything
        uses it. ``pinned``: the node pinned it for us already (a restore's answer)."""
        with self._lock:
            mem = self._readable.get(name)
            if mem is not None:
                if pinned:  # one pin per mapping: give the extra one back
                    self._send(UnpinSegments([name]), node_id)
                return mem
            if not pinned:
                self._send(PinSegments([name]), node_id)
            self._keep_released()
            kept, key = self._kept.pop(name, (None, None))
            try:
                mapping, key = shm.reopen_readonly(name, kept, key)
            except BaseException:
                self._send(UnpinSegments([name]), node_id)
                raise
            if kept is not None and mapping is not kept:
                _close(kept)  # (another file by that name now)
            numpy = sys.modules.get("numpy")  # (loaded already, or not worth loading here)
            if numpy is None:
                mem = mapping
                weakref.finalize(mem, self._send, UnpinSegments([name]), node_id)
            else:
                mem = numpy.frombuffer(mapping, dtype=numpy.uint8)
                weakref.finalize(mem, self._release, name, node_id, mapping, key)
            self._readable[name] = mem
            return mem

    def _release(self, name: str, node_id: bytes | None, mapping: mmap.mmap, key: tuple) -> None:
        """A view's finalizer (any thread, any moment): unpin; keep the mapping."""
        if self._stopped:  # (an array that outlived its session)
            _close(mapping)
        else:
            self._released.append((name, mapping, key))
        self._send(UnpinSegments([name]), node_id)

    def _keep_released(self) -> None:
        """(Holding the lock.) Move the mappings released since into _kept, oldest out."""
        while self._released:
            name, mapping, key = self._released.pop(0)
            old = self._kept.pop(name, None)
            if old is not None and old[0] is not mapping:
                _close(old[0])
            self._kept[name] = (mapping, key)
        while len(self._kept) > self.max_kept:
            _, (old, _) = self._kept.popitem(last=False)
            _close(old)

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
        """The node unlinked these segments: drop our writable and kept mappings of them."""
        with self._lock:
            self._keep_released()
            for name in names:
                mem = self._writable.pop(name, None)
                if mem is not None:
                    mem.close()
                kept = self._kept.pop(name, None)
                if kept is not None:
                    _close(kept[0])

    def forget_all(self) -> None:
        with self._lock:
            self._stopped = True
            self._keep_released()
            for mem in self._writable.values():
                mem.close()
            self._writable.clear()
            for mapping, _ in self._kept.values():
                _close(mapping)
            self._kept.clear()


def _close(mapping: mmap.mmap) -> None:
    """Unmap a kept mapping now, or when it is garbage if a buffer still points into it."""
    try:
        mapping.close()
    except BufferError:
        pass
