"""This process's connections to nodes other than its own.

An owner talks to another node when its own node spilled a lease request there
(the lease is then requested, returned and cancelled at that node), and when an
object it owns or reads lives there (frees and pins go to the node that
accounts for the segment). Each link registers like any client: as a driver if
this process is one (so the node forwards its workers' output here too), else
as an owner.

Loop thread only. Links are dialed once per node and dropped when they close.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from ..config import CONFIG
from ..protocol.connection import Connection, connect
from ..protocol.messages import FreeObjects, GetClusterInfo, Message, RegisterClient
from ..protocol.reach import reach_address

if TYPE_CHECKING:
    from .core_worker import CoreWorker

logger = logging.getLogger("minray")


class NodeLinks:
    def __init__(self, worker: CoreWorker):
        self.worker = worker
        self._by_address: dict[str, Connection] = {}
        self._by_id: dict[bytes, Connection] = {}
        self._dialing: dict[str, asyncio.Task] = {}

    async def at(self, address: str) -> Connection:
        """The registered connection to the node at ``address`` (dialed if needed)."""
        if address == self.worker.node_address:
            return self.worker.node
        conn = self._by_address.get(address)
        if conn is not None and not conn.closed:
            return conn
        task = self._dialing.get(address)
        if task is None:
            task = self._dialing[address] = self.worker.loop.create_task(self._dial(address))
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._dialing.pop(address, None)

    def send(self, node_id: bytes, msg: Message) -> None:
        """Send a notification to the node ``node_id`` (looked up and dialed if needed)."""
        if node_id == self.worker.node_id:
            self.worker.node.send(msg)
            return
        conn = self._by_id.get(node_id)
        if conn is not None and not conn.closed:
            conn.send(msg)
        else:
            self.worker.loop.create_task(self._send_later(node_id, msg))

    def node_died(self, node_id: bytes) -> None:
        """Close the link to a node declared dead: requests waiting there fail now."""
        conn = self._by_id.get(node_id)
        if conn is not None:
            conn.close()

    def close_all(self) -> None:
        for conn in list(self._by_address.values()):
            conn.close()

    # --- internals -------------------------------------------------------------------------

    async def _dial(self, address: str) -> Connection:
        """Connect and register, within a few seconds (a hung node must not hold us)."""
        return await asyncio.wait_for(self._register(address), CONFIG.head_connect_timeout_s)

    async def _register(self, address: str) -> Connection:
        worker = self.worker
        conn = await connect(address, worker, worker.token, worker.config.max_frame_bytes)
        kind = "driver" if worker.mode == "driver" else "owner"
        try:
            reply = await conn.request(
                RegisterClient(kind, worker.worker_id, worker.address, os.getpid(), worker.job_id)
            )
        except asyncio.CancelledError:
            conn.close()
            raise
        conn.info["node_id"] = reply.node_id
        conn.close_callbacks.append(self._closed)
        self._by_address[address] = conn
        self._by_id[reply.node_id] = conn
        return conn

    async def _send_later(self, node_id: bytes, msg: Message) -> None:
        try:
            nodes = (await self.worker.node.request(GetClusterInfo())).nodes
            node = next((n for n in nodes if n["NodeID"] == node_id.hex()), None)
            address = reach_address(node, self.worker.node_ip) if node else None
            if node is not None and not node["Alive"] and type(msg) is FreeObjects:
                self._free_copies_everywhere(nodes, msg)
                return
            if address is None or not node["Alive"]:
                return  # the node is gone, and its segments with it
            conn = await self.at(address)
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            logger.debug("could not reach node %s for %s: %s", node_id.hex(), msg, e)
            return
        conn.send(msg)

    def _free_copies_everywhere(self, nodes: list[dict], msg: FreeObjects) -> None:
        """The object's holder died, and with it the list of nodes it sent copies to: tell
        every live node, so that a copy made before the holder died is not left behind."""
        for node in nodes:
            if node["Alive"]:
                self.send(bytes.fromhex(node["NodeID"]), msg)

    def _closed(self, conn: Connection) -> None:
        for table in (self._by_address, self._by_id):
            for key in [k for k, c in table.items() if c is conn]:
                del table[key]
