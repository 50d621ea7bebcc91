"""The node's answers to object-store messages: reserving, freeing and pinning segments.

A mixin of :class:`~minray.node.daemon.NodeDaemon`; the accounting itself is the
pure ``StoreAccounting`` (object_store/accounting.py). The node unlinks a segment
when it is freed and nobody pins it, and tells every client, since writers may
keep a mapping of it for reuse. A reservation that does not fit waits while
others are spilled to disk (node/spilling.py); one that fits costs no more than
before. The writer holds a pin on its new segment until it has written it: its
next CreateObject lists what it has written, and a full store asks (FlushWritten).
"""

from __future__ import annotations

from ..exceptions import ObjectStoreFullError, OutOfDiskError
from ..object_store import shm
from ..object_store.accounting import Reservation
from ..protocol.connection import Connection
from ..protocol.messages import (
    CreateObject,
    ErrorReply,
    ObjectCreated,
    SegmentsRemoved,
    UnpinSegments,
)


class ObjectHandlers:
    """``handle_<Message>`` methods for segments, mixed into the node daemon."""

    def handle_CreateObject(self, conn: Connection, msg: CreateObject):
        if msg.written:  # the writer's pins on the objects it has written since
            self._written(conn, msg.written)
        segment = shm.segment_name(self.session_tag, msg.object_id)
        if self.spilled and msg.object_id in self.spilled:  # made again (a retry): new value
            self._remove_spill_files([msg.object_id])
        try:
            reservation, unlink = self.store.reserve(msg.object_id, segment, msg.size, msg.owner)
        except ObjectStoreFullError:
            return self._create_after_spilling(conn, msg, segment)
        self._unlink(unlink)
        self.spill_ahead_soon()
        return self._created(conn, reservation)

    async def _create_after_spilling(self, conn: Connection, msg: CreateObject, segment: str):
        try:
            reservation = await self.reserve_room(msg.object_id, segment, msg.size, msg.owner)
        except (ObjectStoreFullError, OutOfDiskError) as e:
            return ErrorReply(type(e).__name__, str(e))
        if conn.closed:  # the writer is gone: nobody will write or free it
            self._unlink(self.store.free(msg.object_id))
            return ErrorReply("Cancelled", "the writer disconnected")
        return self._created(conn, reservation)

    def _created(self, conn: Connection, reservation: Reservation) -> ObjectCreated:
        self.store.pin(reservation.segment)  # the writer's, until it has written the object
        conn.info["pins"][reservation.segment] += 1
        conn.info.setdefault("writing", set()).add(reservation.segment)
        return ObjectCreated(reservation.segment, reservation.size, reservation.reused)

    def _written(self, conn: Connection, segments: list) -> None:
        """The writer finished these segments: its pins on them go."""
        writing = conn.info.get("writing", set())
        done = [segment for segment in segments if segment in writing]
        writing.difference_update(done)
        self.handle_UnpinSegments(conn, UnpinSegments(done))

    def handle_FreeObjects(self, conn: Connection, msg) -> None:
        unlink: list[str] = []
        for object_id in msg.object_ids:
            unlink += self.store.free(object_id)
            self._forget_copy(object_id)
        self._unlink(unlink)
        if self.spilled:
            self._remove_spill_files(msg.object_ids)
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
