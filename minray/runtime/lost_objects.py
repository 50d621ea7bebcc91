"""Noticing that an owned object's shared-memory copy is gone, and finding another.

A mixin of :class:`~minray.runtime.core_worker.CoreWorker`, on the loop thread.
A large value lives in one segment, on the node that made it. The owner learns
that this copy is gone in one of two ways:

* ``NodeDied`` from its node: every value it owns on that node is lost at once;
* ``ReportObjectLost`` from a reader whose read failed (a worker that could not
  read a task's argument reports through the task's owner, see
  ``wait_for_lost_argument``; a process reading its own object tells itself).

The owner then forgets the value (readers wait for a new one) and asks every
live node for a copy pulled from the lost one (``FindCopies``): a node that has
one makes it the object, owned by the owner, and the owner points the value
there. Only objects with no copy left are rebuilt (``runtime/reconstruction.py``).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import TYPE_CHECKING

from ..exceptions import ObjectLostError
from ..protocol.connection import Connection, RemoteError
from ..protocol.messages import (
    FindCopies,
    FreeObjects,
    GetClusterInfo,
    Ok,
    ReportObjectLost,
    ValueKind,
)
from ..protocol.reach import reach_address
from .memory_store import StoredValue

if TYPE_CHECKING:
    from .core_worker import CoreWorker
    from .task_spec import TaskSpec

logger = logging.getLogger("minray")

#: a TaskReply's ``app_error`` when the worker could not read an argument's copy
ARGUMENT_LOST = 2
#: times a task goes back to wait for an argument whose copy was lost before it fails
MAX_ARGUMENT_LOSSES = 3


class LocationLost(ObjectLostError):
    """A copy of an object in shared memory could not be read: its node is gone, or its
    segment. The reader asks the owner to rebuild it (internal; users see the outcome)."""

    def __init__(self, object_ref_hex: str = "", reason: str = "", node_id_hex: str = ""):
        super().__init__(object_ref_hex, reason)
        self.node_id_hex = node_id_hex

    def __reduce__(self):
        return type(self), (self.object_ref_hex, self.reason, self.node_id_hex)


class LostObjects:
    """The owner's side of a lost copy, and the reader's report of one."""

    # --- hearing of a loss ----------------------------------------------------------------

    def objects_on_dead_node(self: CoreWorker, node_id: bytes) -> None:
        """A node died: every value this process owns there is lost."""
        lost = [
            object_id
            for object_id, value in self.store.items()
            if value.kind == ValueKind.SHARED and value.payload[2] == node_id
        ]
        if lost:
            self.objects_lost(lost, node_id, "that node died")

    def handle_ReportObjectLost(self: CoreWorker, conn: Connection, msg: ReportObjectLost) -> Ok:
        self.object_lost(msg.object_id, msg.node_id, "a reader could not read it")
        return Ok()

    async def report_lost(self: CoreWorker, object_id: bytes, owner: str, node_id: bytes) -> None:
        """Tell the owner (maybe this process) that its copy on ``node_id`` is lost."""
        if owner == self.address:
            self.object_lost(object_id, node_id, "it could not be read")
            return
        conn = await self.peer(owner)
        await conn.request(ReportObjectLost(object_id, node_id))

    def object_lost(self: CoreWorker, object_id: bytes, node_id: bytes, why: str) -> None:
        """The copy of an owned object on ``node_id`` is gone."""
        value = self.store.get(object_id)
        if value is None or value.kind != ValueKind.SHARED or value.payload[2] != node_id:
            return  # told already (it is being recovered, or was), or not ours
        self.objects_lost([object_id], node_id, why)

    def objects_lost(self: CoreWorker, object_ids: list, node_id: bytes, why: str) -> None:
        """Forget the lost values now (readers wait for new ones), then recover them."""
        lost = {object_id: self.store.delete(object_id) for object_id in object_ids}
        self.loop.create_task(self._recover(lost, node_id, why))

    # --- recovering -----------------------------------------------------------------------

    async def _recover(self: CoreWorker, lost: dict, node_id: bytes, why: str) -> None:
        found = await self._find_copies(list(lost), node_id)
        where = f"Its only copy was on node {node_id.hex()[:12]}, and {why}."
        for object_id, old in lost.items():
            copy = found.get(object_id)
            if object_id not in self.refs or object_id in self.store:
                if copy is not None and object_id not in self.refs:  # freed meanwhile
                    self.nodes.send(copy[0], FreeObjects([object_id]))
                continue
            if copy is not None:
                holder, segment, size = copy
                payload = [segment, size, holder, object_id]
                self.store.put(object_id, StoredValue(ValueKind.SHARED, payload, old.refs))
                logger.info(
                    "Object %s was lost with node %s; a copy on node %s takes its place.",
                    object_id.hex(), node_id.hex()[:12], holder.hex()[:12],
                )  # fmt: skip
            else:
                self.rebuild_lost(object_id, where)

    async def _find_copies(self: CoreWorker, object_ids: list, node_id: bytes) -> dict:
        """Ask every live node for copies pulled from ``node_id``: {object id: (node id,
        segment, size)}. A node that had one adopts it; spare copies are freed. The node
        that lost them is told to free them too (if it lives, only a read failed)."""
        try:
            nodes = (await self.node.request(GetClusterInfo())).nodes
        except (OSError, ConnectionError) as e:
            logger.debug("could not look for copies of lost objects: %s", e)
            return {}
        live = [n for n in nodes if n["Alive"]]
        if any(bytes.fromhex(n["NodeID"]) == node_id for n in live):
            self.nodes.send(node_id, FreeObjects(object_ids))
        asks = [
            self._ask_for_copies(n, object_ids, node_id)
            for n in live
            if bytes.fromhex(n["NodeID"]) != node_id
        ]
        found: dict = {}
        for holder, copies in await asyncio.gather(*asks):
            spare = []
            for object_id, segment, size in copies:
                if object_id in found:
                    spare.append(object_id)
                else:
                    found[object_id] = (holder, segment, size)
            if spare:
                self.nodes.send(holder, FreeObjects(spare))
        return found

    async def _ask_for_copies(self: CoreWorker, node: dict, object_ids: list, node_id: bytes):
        holder = bytes.fromhex(node["NodeID"])
        try:
            if holder == self.node_id:
                conn = self.node
            else:
                conn = await self.nodes.at(reach_address(node, self.node_ip))
            reply = await conn.request(FindCopies(object_ids, node_id, self.address))
        except (OSError, ConnectionError, RemoteError, asyncio.TimeoutError, TypeError) as e:
            logger.debug("could not ask node %s for copies: %s", node["NodeID"][:12], e)
            return holder, []
        return holder, reply.copies

    # --- an argument lost under a pushed task -----------------------------------------------

    def wait_for_lost_argument(self: CoreWorker, spec: TaskSpec, entries: list, resolve) -> bool:
        """The worker could not read an argument's copy of task ``spec`` (its node died):
        the argument's owner recovers it, then ``resolve()`` looks the arguments up again.
        False: the task fails with the error as it is."""
        spec.argument_losses += 1
        try:
            lost = pickle.loads(entries[0][1])
            object_id, node_id = bytes.fromhex(lost.object_ref_hex), bytes.fromhex(lost.node_id_hex)
        except Exception:
            return False
        owner = next((o for _, oid, o in spec.placeholders if oid == object_id), None)
        if owner is None or spec.argument_losses > MAX_ARGUMENT_LOSSES or spec.cancelled:
            return False
        for value in spec.fetched:
            self.release_holds(value.refs)
        spec.resolved = spec.resolved_refs = spec.fetched = ()
        self.loop.create_task(self._report_then(object_id, owner, node_id, resolve))
        return True

    async def _report_then(self: CoreWorker, object_id, owner, node_id, resolve) -> None:
        try:
            await self.report_lost(object_id, owner, node_id)
        except (OSError, ConnectionError, RemoteError) as e:  # the lookup says what became of it
            logger.debug("could not report lost object %s: %s", object_id.hex(), e)
        resolve()
