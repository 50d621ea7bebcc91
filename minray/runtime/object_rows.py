"""What this process tells the state API about the objects it references.

A mixin of :class:`~minray.runtime.core_worker.CoreWorker`. ``list_objects``
asks every node, which asks each of its processes (``GetObjectRows``); each
answers with a row per object it references, in Ray's ``ObjectState`` shape:
an object referenced by three processes has three rows, as in Ray. Only the
owner knows a value's size, its task's state and how often it was rebuilt
(``reconstructions``, runtime/reconstruction.py); a borrower reports -1, NIL and None.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..protocol.connection import Connection
from ..protocol.messages import GetObjectRows, ObjectRows, ValueKind

if TYPE_CHECKING:
    from .core_worker import CoreWorker


def reference_type(counts: dict, is_actor_handle: bool) -> str:
    """Ray's name for why a process holds an object, from its reference counts."""
    if is_actor_handle:
        return "ACTOR_HANDLE"
    if counts["local"]:
        return "LOCAL_REFERENCE"
    if counts["submitted"]:
        return "USED_BY_PENDING_TASK"
    if counts["holds"]:
        return "CAPTURED_IN_OBJECT"
    if counts["borrowers"]:
        return "PINNED_IN_MEMORY"  # kept for processes it was passed to
    return "UNKNOWN_STATUS"


def value_size(kind: int, payload) -> int:
    """Bytes of a stored value: its inline pickle and buffers, or its segment's size."""
    if kind == ValueKind.INLINE:
        return sum(len(part) for part in payload)
    if kind == ValueKind.SHARED:
        return int(payload[1])
    return len(payload)


class ObjectRowsMixin:
    """``handle_GetObjectRows``: a row per object this process references."""

    def handle_GetObjectRows(self: CoreWorker, conn: Connection, msg: GetObjectRows) -> ObjectRows:
        return ObjectRows(self.object_rows())

    def object_rows(self: CoreWorker) -> list[dict]:
        with self._lock:
            entries = [(oid, self.refs.counts(oid), self.refs.owner_of(oid)) for oid in self.refs]
        kind = "DRIVER" if self.mode == "driver" else "WORKER"
        pid, ip, node = os.getpid(), self.node_ip, self.node_id.hex()
        rows = []
        for object_id, counts, owner in entries:
            size, status, attempt, where, rebuilt = -1, "NIL", 0, None, None
            if owner == self.address:
                rebuilt = self.reconstructed.get(object_id, 0)
                value = self.store.get(object_id)
                if value is not None:
                    size = value_size(value.kind, value.payload)
                    status = "FAILED" if value.kind == ValueKind.ERROR else "FINISHED"
                    if value.kind == ValueKind.SHARED:
                        where = value.payload[2].hex()
                else:
                    status, attempt = self.submitter.task_status(object_id)
            rows.append(
                {
                    "object_id": object_id.hex(),
                    "object_size": size,
                    "task_status": status,
                    "attempt_number": attempt,
                    "reference_type": reference_type(counts, object_id in self._actor_lifetimes),
                    "call_site": "disabled",
                    "type": kind,
                    "pid": pid,
                    "ip": ip,
                    "reconstructions": rebuilt,
                    "node_id": node,
                    "owner": owner,
                    "stored_on_node": where,
                }
            )
        return rows
