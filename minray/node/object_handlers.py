"""The node's answers to object-store messages: reserving, freeing and pinning segments.

A mixin of :class:`~minray.node.daemon.NodeDaemon`; the accounting itself is the
pure ``StoreAccounting`` (object_store/accounting.py). The node unlinks a segment
when it is freed and nobody pins it, and tells every client, since writers may
keep a mapping of it for reuse.
"""

from __future__ import annotations

from ..exceptions import ObjectStoreFullError
from ..object_store import shm
from ..protocol.connection import Connection
from ..protocol.messages import CreateObject, ErrorReply, ObjectCreated, SegmentsRemoved


class ObjectHandlers:
    """``handle_<Message>`` methods for segments, mixed into the node daemon."""

    def handle_CreateObject(self, conn: Connection, msg: CreateObject):
        segment = shm.segment_name(self.session_tag, msg.object_id)
        try:
            reservation, unlink = self.store.reserve(msg.object_id, segment, msg.size, msg.owner)
        except ObjectStoreFullError as e:
            return ErrorReply("ObjectStoreFullError", str(e))
        self._unlink(unlink)
        return ObjectCreated(reservation.segment, reservation.size, reservation.reused)

    def handle_FreeObjects(self, conn: Connection, msg) -> None:
        unlink: list[str] = []
        for object_id in msg.object_ids:
            unlink += self.store.free(object_id)
            self._forget_copy(object_id)
        self._unlink(unlink)
        self._free_copies(msg.object_ids)

    def handle_PinSegments(self, conn: Connection, msg) -> None:
        for segment in msg.segments:
            self.store.pin(segment)
            conn.info["pins"][segment] += 1

    def handle_UnpinSegments(self, conn: Connection, msg) -> None:
        unlink: list[str] = []
        pins = conn.info["pins"]
        for segment in msg.segments:
            if pins[segment] > 0:
                pins[segment] -= 1
                unlink += self.store.unpin(segment)
        self._unlink(unlink)

    def _unlink(self, segments: list[str]) -> None:
        if not segments:
            return
        for segment in segments:
            shm.unlink(segment)
        for client in self.clients:  # writers may keep a mapping of them for reuse
            client.send(SegmentsRemoved(segments))
