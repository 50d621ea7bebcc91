"""ObjectRef: a name for a value that exists (or will) somewhere in the cluster.

A ref knows its id and the address of its owner, the process that created it.
Live refs are counted by the process's CoreWorker; pickling a ref (inside task
arguments, return values or ``put`` values) records it so the receiver can be
counted as a borrower. A ref is awaitable and converts to a
``concurrent.futures.Future``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from operator import attrgetter
from typing import Any

from .ids import JOB_ID_SIZE, TASK_ID_SIZE, JobID, TaskID
from .serialization import note_ref

#: the CoreWorker of this process while minray is initialized (set by the runtime)
current_worker: Any = None

#: a ref's id, owner and session (C-speed reads over a long list: ``set(map(REF_ID, refs))``)
REF_ID = attrgetter("_id")
REF_OWNER = attrgetter("_owner")
REF_WORKER = attrgetter("_worker")


def _rebuild(object_id: bytes, owner: str | None) -> ObjectRef:
    return ObjectRef(object_id, owner)


class ObjectRef:
    """A reference to a (possibly future) value. Get it with ``minray.get`` or ``await``."""

    __slots__ = ("_id", "_owner", "_worker", "__weakref__")

    def __init__(self, object_id: bytes, owner: str | None = None):
        if not isinstance(object_id, bytes):
            raise TypeError(f"ObjectRef needs the bytes of an object id, got {type(object_id)}")
        self._id = object_id
        worker = current_worker
        if owner is None and worker is not None:
            owner = worker.owner_of(object_id)
        self._owner = owner
        self._worker = worker
        if worker is not None:
            worker.add_local_ref(object_id, owner)

    def __del__(self) -> None:
        worker = self._worker
        if worker is not None:
            try:
                worker.remove_local_ref(self._id, self._owner)
            except Exception:  # interpreter shutdown
                pass

    def __reduce__(self):
        note_ref(self._id, self._owner)
        return _rebuild, (self._id, self._owner)

    def binary(self) -> bytes:
        return self._id

    def hex(self) -> str:
        return self._id.hex()

    def task_id(self) -> TaskID:
        return TaskID(self._id[:TASK_ID_SIZE])

    def job_id(self) -> JobID:
        return JobID(self._id[TASK_ID_SIZE - JOB_ID_SIZE : TASK_ID_SIZE])

    @property
    def owner_address(self) -> str | None:
        return self._owner

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectRef) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"ObjectRef({self._id.hex()})"

    __str__ = __repr__

    def future(self) -> concurrent.futures.Future:
        """A ``concurrent.futures.Future`` that resolves to the value (or raises its error)."""
        worker = current_worker
        if worker is None:
            from .api import _auto_init

            worker = _auto_init()
        return worker.objects.future_of(self)

    def __await__(self):
        return asyncio.wrap_future(self.future()).__await__()

    def as_future(self) -> asyncio.Future:
        return asyncio.wrap_future(self.future())
