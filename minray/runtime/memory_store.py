"""The owner's table of object values (loop thread writes; any thread may read).

Small values are kept here inline; large ones as the location of their
shared-memory segment; failures as the error to raise at ``get``. Waiters are
asyncio futures resolved when the value arrives (loop thread), or callbacks,
which any thread may add and remove.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, NamedTuple


class StoredValue(NamedTuple):
    kind: int  #: a protocol.messages.ValueKind
    #: INLINE: [pickle, *buffers]; SHARED: [segment, size, node_id, object_id]; ERROR: bytes
    payload: Any
    refs: list  #: refs nested in the value, [[object_id, owner], ...]


class MemoryStore:
    def __init__(self) -> None:
        self._values: dict[bytes, StoredValue] = {}
        self._waiters: dict[bytes, list[asyncio.Future]] = {}
        #: object id -> its callback, or a list of them (one get() waits on most objects: no list)
        self._callbacks: dict[bytes, Any] = {}
        #: a callback added from another thread either sees the value or is called by put
        self._callbacks_lock = threading.Lock()
        #: called with every object id that arrives (wait() on many refs: one each, not n)
        self.arrival_watchers: set = set()

    def get(self, object_id: bytes) -> StoredValue | None:
        return self._values.get(object_id)

    def __contains__(self, object_id: bytes) -> bool:
        return object_id in self._values

    def put(self, object_id: bytes, value: StoredValue) -> None:
        self.announce(self.put_quietly(object_id, value))

    def put_quietly(self, object_id: bytes, value: StoredValue) -> tuple:
        """Store a value; return what ``announce`` tells waiting threads (do it after any lock
        the caller holds, so the woken thread does not wait for that lock)."""
        with self._callbacks_lock:
            self._values[object_id] = value
            callbacks = self._callbacks.pop(object_id, None)
        for fut in self._waiters.pop(object_id, ()):
            if not fut.done():
                fut.set_result(value)
        return object_id, callbacks

    def announce(self, arrival: tuple) -> None:
        object_id, callbacks = arrival
        if type(callbacks) is list:
            for callback in callbacks:
                callback(object_id)
        elif callbacks is not None:
            callbacks(object_id)
        if self.arrival_watchers:
            for watcher in tuple(self.arrival_watchers):  # (set.add from other threads)
                watcher(object_id)

    def add_callback(self, object_id: bytes, callback) -> None:
        """Call ``callback(object_id)`` when the value arrives: on the loop thread, or on
        this thread now if it is here. Any thread may call this."""
        with self._callbacks_lock:
            if object_id not in self._values:
                waiting = self._callbacks.get(object_id)
                if waiting is None:
                    self._callbacks[object_id] = callback
                elif type(waiting) is list:
                    waiting.append(callback)
                else:
                    self._callbacks[object_id] = [waiting, callback]
                return
        callback(object_id)

    def remove_callback(self, object_id: bytes, callback) -> None:
        """Forget a callback that has not been called (any thread)."""
        with self._callbacks_lock:
            waiting = self._callbacks.get(object_id)
            if type(waiting) is list:
                if callback in waiting:
                    waiting.remove(callback)
                    if not waiting:
                        del self._callbacks[object_id]
            elif waiting is not None and waiting == callback:
                del self._callbacks[object_id]

    def wait(self, object_id: bytes) -> asyncio.Future:
        """A future of the value (already done if the value is here)."""
        fut = asyncio.get_running_loop().create_future()
        value = self._values.get(object_id)
        if value is not None:
            fut.set_result(value)
        else:
            self._waiters.setdefault(object_id, []).append(fut)
        return fut

    def put_new(self, object_id: bytes, value: StoredValue) -> None:
        """Store a value nobody can be waiting for yet (safe from any thread)."""
        self._values[object_id] = value

    def delete(self, object_id: bytes) -> StoredValue | None:
        return self._values.pop(object_id, None)

    def items(self) -> list:
        return list(self._values.items())

    def __len__(self) -> int:
        return len(self._values)
