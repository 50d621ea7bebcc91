"""Spilling to disk: making room in a full store, and bringing objects back.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. (Spilling before the store
is full, in the background, is node/spill_ahead.py; it uses ``_spill``.) When a reservation
(``CreateObject``, a pull from another node, a restore) does not fit, the node
spills least recently used objects that nobody pins to files
(object_store/spill_files.py) until it does, on its spill threads, one
reservation at a time (``_room_lock``); reservations that fit go on meanwhile.
Objects whose writers have not said they are written are pinned; before it
chooses, the node asks those writers (``FlushWritten``).
A spilled object's segment is unlinked; the owner's record of it is left as
it is. A reader that finds the segment gone asks its node (``RestoreObject``),
which reads the file back into a segment of the same name (into a pooled one,
or another name if that one is taken) and pins it for the reader before it
answers. The file stays until the object is freed, so a restored object is
dropped again without a write.

``ObjectStoreFullError`` comes only when spilling every unpinned object would
not make room; a full disk is ``OutOfDiskError``. Either way nothing is lost:
an object leaves shared memory only once its file is complete.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shutil
from typing import TYPE_CHECKING

from ..config import CONFIG
from ..exceptions import ObjectStoreFullError, OutOfDiskError
from ..object_store import shm, spill_files
from ..object_store.accounting import Reservation, SegmentInfo
from ..object_store.spill_policy import SpilledObject, SpillTable
from ..protocol.connection import Connection
from ..protocol.messages import (
    ErrorReply,
    FlushWritten,
    ObjectRestored,
    RestoreObject,
    UnpinSegments,
)

if TYPE_CHECKING:
    from .daemon import NodeDaemon

logger = logging.getLogger("minray.node")

#: rounds of spilling one reservation may take (others may take the room meanwhile)
MAX_ROUNDS = 64


class Spilling:
    """Room-making, ``handle_RestoreObject`` and spill files, mixed into the node daemon."""

    def _init_spilling(self: NodeDaemon) -> None:
        base = CONFIG.object_spilling_directory or self.settings.session_dir
        self.spill_dir = spill_files.node_directory(base, self.settings.node_id)
        self.spilled = SpillTable()
        self._room_lock = asyncio.Lock()
        self._restores: dict[bytes, asyncio.Task] = {}  #: object id -> restore in flight
        self._spill_threads = concurrent.futures.ThreadPoolExecutor(
            2, thread_name_prefix="minray-spill"
        )

    async def reserve_room(
        self: NodeDaemon, object_id: bytes, segment: str, size: int, owner: str
    ) -> Reservation:
        """``store.reserve``, spilling objects to disk first if the store is full; the
        segments to unlink are unlinked. Raises ObjectStoreFullError or OutOfDiskError."""
        try:
            reservation, unlink = self.store.reserve(object_id, segment, size, owner)
        except ObjectStoreFullError:
            reservation, unlink = await self._reserve_spilling(object_id, segment, size, owner)
        self._unlink(unlink)
        self.spill_ahead_soon()
        return reservation

    async def _reserve_spilling(self: NodeDaemon, object_id, segment, size, owner):
        failure: Exception | None = None
        async with self._room_lock:
            for _ in range(MAX_ROUNDS):
                await self._flush_writers()
                try:
                    return self.store.reserve(object_id, segment, size, owner)
                except ObjectStoreFullError:
                    pass
                if failure is not None:  # a write failed and what did spill is not enough
                    raise failure
                victims = self.store.victims(size - self.store.free_bytes)
                if not victims:
                    if await self.spill_ahead_settled():  # what it spilled may be room
                        continue
                    raise ObjectStoreFullError(self._full_message(size))
                failure = await self._spill(victims)
        raise ObjectStoreFullError(self._full_message(size))

    async def _flush_writers(self: NodeDaemon) -> None:
        """Ask each process holding segments it reserved which of them it has written
        since (it says so only with its next CreateObject otherwise): their pins go."""
        writers = [conn for conn in self.clients if conn.info.get("writing") and not conn.closed]
        if not writers:
            return
        replies = await asyncio.gather(
            *(asyncio.wait_for(conn.request(FlushWritten()), 5.0) for conn in writers),
            return_exceptions=True,
        )
        for conn, reply in zip(writers, replies):
            if isinstance(reply, UnpinSegments) and not conn.closed:
                self._written(conn, reply.segments)

    def _full_message(self: NodeDaemon, size: int) -> str:
        store = self.store
        if size > store.capacity:
            return (
                f"cannot store an object of {size:,} bytes: it is larger than the whole object "
                f"store ({store.capacity:,} bytes). Start minray with a larger "
                "object_store_memory, or split the value into smaller objects."
            )
        return (
            f"cannot store an object of {size:,} bytes: the object store has "
            f"{store.free_bytes:,} of {store.capacity:,} bytes free, and spilling every object "
            f"nobody is reading to disk would not make room. {store.usage()}. Let go of arrays "
            "and refs you no longer need (del them), or start minray with a larger "
            "object_store_memory."
        )

    async def _spill(
        self: NodeDaemon, victims: list[tuple[bytes, SegmentInfo]], ahead: bool = False
    ) -> Exception | None:
        """Write ``victims`` to files (those restored earlier have one) and drop them from
        shared memory (``ahead``: before the store is full, node/spill_ahead.py); returns
        the error to raise if a write failed (OutOfDiskError, or ObjectStoreFullError
        naming the directory), else None."""
        loop = asyncio.get_running_loop()
        writes = []
        for object_id, info in victims:
            self.store.start_spill(object_id)
            path = spill_files.file_path(self.spill_dir, object_id)
            if object_id in self.spilled:
                write = loop.create_future()
                write.set_result(None)
            else:
                write = loop.run_in_executor(
                    self._spill_threads, spill_files.write, info.segment, info.size, path
                )
            writes.append((object_id, info, path, write))
        failure: Exception | None = None
        unlink = []
        for object_id, info, path, write in writes:
            try:
                await write
            except (OSError, OutOfDiskError) as e:
                self.store.end_spill(object_id, evict=False)
                failure = failure or e
                continue
            if self.store.info(object_id) != info:  # freed (or made again) meanwhile
                self.store.end_spill(object_id, evict=False)
                if object_id not in self.spilled:
                    spill_files.remove(path)
                continue
            if object_id not in self.spilled:
                self.spilled.add(
                    object_id, SpilledObject(path, info.size, info.owner, info.segment)
                )
            segment = self.store.end_spill(object_id, evict=True)
            if segment is not None:
                unlink.append(segment)
                if ahead:
                    self.spilled_ahead_bytes_total += info.size
        self._unlink(unlink)
        if failure is None or isinstance(failure, OutOfDiskError):
            return failure
        return ObjectStoreFullError(
            f"the object store is full and spilling to {self.spill_dir} failed: "
            f"{failure}. Make that directory writable (or set object_spilling_config's "
            "directory_path to one that is), or drop references to objects you no "
            "longer need."
        )

    # --- restoring ------------------------------------------------------------------------

    def handle_RestoreObject(self: NodeDaemon, conn: Connection, msg: RestoreObject):
        info = self.store.info(msg.object_id)
        if info is not None:  # in memory (restored already, or never spilled)
            return self._pinned_for(conn, info)
        if msg.object_id not in self.spilled:
            return ErrorReply(
                "ObjectLostError",
                "It is neither in shared memory nor spilled on this node (was it freed?).",
            )
        return self._answer_restore(conn, msg.object_id)

    def _restore_task(self: NodeDaemon, object_id: bytes) -> asyncio.Task:
        """The restore of ``object_id`` in flight, started if none is."""
        task = self._restores.get(object_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._restore(object_id))
            self._restores[object_id] = task
            task.add_done_callback(lambda _: self._restores.pop(object_id, None))
        return task

    async def _answer_restore(self: NodeDaemon, conn: Connection, object_id: bytes):
        for _ in range(3):  # (spilled again before this reader pinned it: restored again)
            try:
                await asyncio.shield(self._restore_task(object_id))
            except (ObjectStoreFullError, OutOfDiskError) as e:
                return ErrorReply(type(e).__name__, f"cannot restore it from disk: {e}")
            except OSError as e:
                return ErrorReply("ObjectLostError", f"Reading its spill file failed: {e}")
            info = self.store.info(object_id)
            if info is not None and not conn.closed:
                return self._pinned_for(conn, info)
            if conn.closed or object_id not in self.spilled:
                break
        return ErrorReply("ObjectLostError", "It was freed while it was restored.")

    def _pinned_for(self: NodeDaemon, conn: Connection, info: SegmentInfo) -> ObjectRestored:
        self.store.pin(info.segment)
        conn.info["pins"][info.segment] += 1
        return ObjectRestored(info.segment, info.size)

    async def _restore(self: NodeDaemon, object_id: bytes) -> None:
        record = self.spilled.get(object_id)
        if record is None:  # freed before we began
            return
        segment = record.segment
        for attempt in range(2):
            reservation = await self.reserve_room(object_id, segment, record.size, record.owner)
            if object_id not in self.spilled:  # freed while we made room
                self._unlink(self.store.free(object_id))
                return
            self.store.pin(reservation.segment)  # not spilled again while it is written
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._spill_threads,
                    spill_files.read_into,
                    record.path,
                    record.size,
                    reservation.segment,
                    not reservation.reused,
                )
            except FileExistsError:  # the name is taken (by an object made again): another
                self._unlink(self.store.unpin(reservation.segment) + self.store.free(object_id))
                segment = shm.segment_name(self.session_tag, object_id + bytes([attempt + 1]))
                continue
            except BaseException:
                self._unlink(self.store.unpin(reservation.segment) + self.store.free(object_id))
                raise
            self.spilled.restored_bytes_total += record.size
            self._unlink(self.store.unpin(reservation.segment))
            return
        raise ObjectStoreFullError("no free segment name to restore the object into")

    # --- frees and shutdown ---------------------------------------------------------------

    def _remove_spill_files(self: NodeDaemon, object_ids) -> None:
        """These objects were freed (or made again): their files go."""
        for object_id in object_ids:
            path = self.spilled.pop(object_id)
            if path is not None:
                spill_files.remove(path)

    def _spill_owner_gone(self: NodeDaemon, owner: str) -> None:
        for path in self.spilled.owner_gone(owner):
            spill_files.remove(path)

    def spill_stats(self: NodeDaemon) -> dict:
        count, size = self.spilled.on_disk(lambda oid: self.store.info(oid) is not None)
        return {
            "ObjectStoreSpilledBytes": size,
            "ObjectStoreSpilledObjects": count,
            "ObjectStoreSpilledBytesTotal": self.spilled.spilled_bytes_total,
            "ObjectStoreSpilledAheadBytesTotal": self.spilled_ahead_bytes_total,
            "ObjectStoreRestoredBytesTotal": self.spilled.restored_bytes_total,
            "ObjectSpillingDirectory": self.spill_dir,
        }

    def _close_spilling(self: NodeDaemon) -> None:
        self._spill_threads.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.spill_dir, ignore_errors=True)
