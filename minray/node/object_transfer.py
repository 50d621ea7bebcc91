"""Copying shared objects between nodes: the pull at the reader's node, the push at the holder's.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. A CoreWorker that needs an
object whose segment another node holds asks its own node (``PullObject``).
That node pulls it once, however many readers ask at the same time: it reserves
room in its own store, dials the holder's node on a connection of its own, and
moves the bytes into the new segment with ``splice`` (through a pipe, in the
kernel; ``recv_into`` a mapping where ``splice`` is missing), on a blocking
socket, in a thread. The holder answers ``SendObject`` by streaming the segment
with ``sendfile``, from its spill file if it was spilled: no copy in user space on
either side. Over TLS (protocol/tls.py) the bytes must be encrypted: the holder
writes them through the connection's TLS transport on its loop, in chunks paced by
the transport, and the reader decrypts them into a mapping of the segment. A full
store at the reader's node spills to make room for the copy, and a copy is spilled
like any object (node/spilling.py).

The copy belongs to the node that made it. The holder remembers where it sent
copies, and when the owner frees the object (``FreeObjects`` to the holder) it
frees them too. If the holder died, the owner sends the free to every live node
(runtime/node_links.py), so the copies still go. Nodes on one machine (the same
address) use their Unix sockets; others use TCP (cluster_address.reach_address).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import select
from typing import TYPE_CHECKING

from ..config import CONFIG
from ..exceptions import ObjectStoreFullError, OutOfDiskError
from ..object_store import shm
from ..protocol import blocking, framing
from ..protocol.connection import DEFERRED, Connection, RemoteError
from ..protocol.messages import (
    CopiesFound,
    ErrorReply,
    FindCopies,
    FreeObjects,
    ObjectPulled,
    Ok,
    PullObject,
    SendObject,
)
from ..protocol.reach import reach_address

if TYPE_CHECKING:
    from .daemon import NodeDaemon

logger = logging.getLogger("minray.node")


class ObjectTransfers:
    """``handle_PullObject`` and ``handle_SendObject``, mixed into the node daemon."""

    def _init_transfers(self: NodeDaemon) -> None:
        self._pulls: dict[bytes, asyncio.Task] = {}  #: object id -> the pull in flight
        self._copies: dict[
            bytes, tuple
        ] = {}  #: object id -> (source node, its segment, our segment, size)
        self._sent_to: dict[bytes, set[bytes]] = {}  #: object id -> nodes holding a copy
        self._transfer_threads = concurrent.futures.ThreadPoolExecutor(
            CONFIG.transfer_threads, thread_name_prefix="minray-transfer"
        )

    # --- the reader's node ----------------------------------------------------------------

    def handle_PullObject(self: NodeDaemon, conn: Connection, msg: PullObject):
        copy = self._copies.get(msg.object_id)
        if copy is not None and copy[:2] == (msg.node_id, msg.segment):
            return ObjectPulled(copy[2], copy[3])
        task = self._pulls.get(msg.object_id)
        if task is None:
            task = self._pulls[msg.object_id] = asyncio.get_running_loop().create_task(
                self._pull(msg)
            )
            task.add_done_callback(lambda _: self._pulls.pop(msg.object_id, None))
        return asyncio.shield(task)

    async def _pull(self: NodeDaemon, msg: PullObject):
        source = self.peers.record(msg.node_id)
        where = f"node {msg.node_id.hex()[:12]}"
        if source is None or not source.get("Alive"):
            return ErrorReply(
                "ObjectLostError",
                f"Its only copy was on {where}, which is dead or not in the cluster.",
            )
        address = reach_address(source, self.settings.node_ip)
        if address is None:
            return ErrorReply("ObjectLostError", f"{where} cannot be reached from this node.")
        segment = shm.segment_name(self.session_tag, msg.object_id)
        try:
            reservation = await self.reserve_room(msg.object_id, segment, msg.size, "")
        except (ObjectStoreFullError, OutOfDiskError) as e:
            return ErrorReply(type(e).__name__, f"cannot copy it from {where}: {e}")
        request = SendObject(msg.object_id, msg.segment, msg.size, self.settings.node_id)
        self.store.pin(reservation.segment)  # not spilled while it is written
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._transfer_threads, _receive, address, self.token, request, reservation
            )
        except (OSError, ConnectionError, RemoteError, framing.ProtocolError) as e:
            self._unlink(self.store.unpin(reservation.segment) + self.store.free(msg.object_id))
            reason = e.args[-1] if isinstance(e, RemoteError) else f"{type(e).__name__}: {e}"
            logger.warning("pulling %s from %s failed: %s", msg.object_id.hex(), where, reason)
            return ErrorReply("ObjectLostError", f"Copying it from {where} failed: {reason}")
        self._unlink(self.store.unpin(reservation.segment))
        self._copies[msg.object_id] = (msg.node_id, msg.segment, reservation.segment, msg.size)
        return ObjectPulled(reservation.segment, msg.size)

    def handle_FindCopies(self: NodeDaemon, conn: Connection, msg: FindCopies) -> CopiesFound:
        """The owner lost these objects with node ``msg.node_id``: the copies made here
        from there become the objects (freed by the owner, or when it exits)."""
        found = []
        for object_id in msg.object_ids:
            copy = self._copies.get(object_id)
            if copy is not None and copy[0] == msg.node_id:
                del self._copies[object_id]
                self.store.adopt(object_id, msg.owner)
                found.append([object_id, copy[2], copy[3]])
        return CopiesFound(found)

    def _forget_copy(self, object_id: bytes) -> None:
        """FreeObjects reached this node: a copy made here goes with the object."""
        self._copies.pop(object_id, None)

    # --- the holder's node ----------------------------------------------------------------

    def handle_SendObject(self: NodeDaemon, conn: Connection, msg: SendObject):
        segment = self.store.segment_of(msg.object_id)  # (restored: maybe under a new name)
        spilled = self.spilled.get(msg.object_id)
        if segment is not None:
            source = functools.partial(shm.open_fd, segment)
            self.store.pin(segment)  # not reused (nor spilled) while it is read
        elif spilled is not None:  # sent from its file (open, it outlives a free)
            source = functools.partial(os.open, spilled.path, os.O_RDONLY | os.O_CLOEXEC)
        else:
            raise LookupError(f"this node holds no object {msg.object_id.hex()}")
        if conn.is_tls:
            task = asyncio.get_running_loop().create_task(_send_tls(conn, source, msg.size))
            task.add_done_callback(lambda f: self._sent(conn, msg, segment, f))
            return DEFERRED
        fd = conn.take_over()
        future = asyncio.get_running_loop().run_in_executor(
            self._transfer_threads, _send, fd, source, msg.size
        )
        future.add_done_callback(lambda f: self._sent(conn, msg, segment, f))
        return DEFERRED  # the answer is written by _send, before the bytes

    def _sent(self: NodeDaemon, conn: Connection, msg: SendObject, segment, future) -> None:
        conn.close()
        if segment is not None:
            self._unlink(self.store.unpin(segment))
        if future.cancelled() or future.exception() is not None:
            why = "cancelled" if future.cancelled() else future.exception()
            logger.warning("sending %s failed: %s", msg.object_id.hex(), why)
            return
        if self.store.segment_of(msg.object_id) is None and msg.object_id not in self.spilled:
            # freed meanwhile: so is the copy
            self.peers.send(msg.to_node, FreeObjects([msg.object_id]))
        else:
            self._sent_to.setdefault(msg.object_id, set()).add(msg.to_node)

    def _free_copies(self: NodeDaemon, object_ids: list) -> None:
        """The owner freed these objects here: free the copies sent to other nodes."""
        by_node: dict[bytes, list] = {}
        for object_id in object_ids:
            for node_id in self._sent_to.pop(object_id, ()):
                by_node.setdefault(node_id, []).append(object_id)
        for node_id, ids in by_node.items():
            self.peers.send(node_id, FreeObjects(ids))

    def _close_transfers(self) -> None:
        self._transfer_threads.shutdown(wait=False, cancel_futures=True)


# --- the blocking halves, run on transfer threads ---------------------------------------


def _receive(address: str, token: bytes, request: SendObject, reservation) -> None:
    """Dial the holder, ask for the object, and read it into the reserved segment."""
    sock = blocking.dial(address, token, CONFIG.transfer_timeout_s)
    try:
        blocking.request(sock, request)
        if blocking.can_splice(sock):  # in the kernel, into the segment's pages
            if reservation.reused:
                fd = shm.open_fd_writable(reservation.segment)
            else:
                fd = shm.create_fd(reservation.segment, reservation.size)
            try:
                blocking.splice_into(sock, fd, request.size, CONFIG.transfer_timeout_s)
            finally:
                os.close(fd)
            return
        if reservation.reused:
            mem = shm.open_writable(reservation.segment)
        else:
            mem = shm.create(reservation.segment, reservation.size)
        try:
            view = memoryview(mem)
            try:
                blocking.recv_into_exactly(sock, view[: request.size])
            finally:
                view.release()
        finally:
            mem.close()
    finally:
        sock.close()


async def _send_tls(conn: Connection, open_source, size: int, chunk: int = 1 << 20) -> None:
    """Write Ok, then the first ``size`` bytes of ``open_source()`` through the TLS
    transport of ``conn``, a chunk at a time, waiting whenever its buffer is full."""
    transport = conn.take_over_transport()
    transport.write(framing.encode(Ok(), -1))
    src = open_source()
    try:
        offset = 0
        while offset < size:
            data = os.pread(src, min(chunk, size - offset), offset)
            if not data:
                raise OSError(f"the object's source ended after {offset:,} of {size:,} bytes")
            transport.write(data)
            offset += len(data)
            await asyncio.wait_for(conn.drain(), CONFIG.transfer_timeout_s)
    finally:
        os.close(src)
    await asyncio.wait_for(conn.drain(), CONFIG.transfer_timeout_s)


def _send(fd: int, open_source, size: int) -> None:
    """Write Ok, then the first ``size`` bytes of ``open_source()`` (a segment or a spill
    file) to the socket ``fd`` (non-blocking: wait with poll when it is full); close ``fd``."""
    try:
        _write_all(fd, memoryview(framing.encode(Ok(), -1)))
        src = open_source()
        try:
            offset = 0
            while offset < size:
                try:
                    offset += os.sendfile(fd, src, offset, size - offset)
                except BlockingIOError:
                    _wait_writable(fd)
        finally:
            os.close(src)
    finally:
        os.close(fd)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:
            _wait_writable(fd)


def _wait_writable(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    if not poller.poll(CONFIG.transfer_timeout_s * 1000):
        raise TimeoutError(f"the receiver took nothing for {CONFIG.transfer_timeout_s} s")
