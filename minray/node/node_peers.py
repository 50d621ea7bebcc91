"""This node's connections to other nodes, dialed on first use and kept.

Nodes talk to each other for a few things only: freeing the copies of an object
sent to other nodes, and asking the node that keeps an actor's record about it
(a handle passed to another node, ``get_actor`` by name). Bulk object bytes
use connections of their own (node/object_transfer.py). A node is reached by
its Unix socket on the same machine, else by TCP (protocol/reach.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..config import CONFIG
from ..protocol.connection import Connection, connect
from ..protocol.messages import Message
from ..protocol.reach import reach_address

if TYPE_CHECKING:
    from .daemon import NodeDaemon

logger = logging.getLogger("minray.node")


class NodeUnreachable(ConnectionError):
    """The node is dead, unknown, or did not answer the dial in time."""


class NodePeers:
    def __init__(self, daemon: NodeDaemon):
        self.daemon = daemon
        self._conns: dict[bytes, Connection] = {}
        self._dialing: dict[bytes, asyncio.Task] = {}

    def record(self, node_id: bytes) -> dict | None:
        """The node's entry in the cluster view, or None."""
        wanted = node_id.hex()
        return next((n for n in self.daemon._cluster_nodes() if n["NodeID"] == wanted), None)

    async def conn(self, node_id: bytes) -> Connection:
        """The connection to a live node; NodeUnreachable if there is none."""
        conn = self._conns.get(node_id)
        if conn is not None and not conn.closed:
            return conn
        task = self._dialing.get(node_id)
        if task is None:
            task = self._dialing[node_id] = asyncio.get_running_loop().create_task(
                self._dial(node_id)
            )
            task.add_done_callback(lambda _: self._dialing.pop(node_id, None))
        return await asyncio.shield(task)

    async def request(self, node_id: bytes, msg: Message) -> Message:
        """Ask another node; RemoteError for its ErrorReply, ConnectionError if it is gone."""
        return await (await self.conn(node_id)).request(msg)

    def send(self, node_id: bytes, msg: Message) -> None:
        """Tell another node, if it can be reached (a dead node needs no telling)."""
        asyncio.get_running_loop().create_task(self._send(node_id, msg))

    def close_all(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    async def _send(self, node_id: bytes, msg: Message) -> None:
        try:
            (await self.conn(node_id)).send(msg)
        except ConnectionError as e:
            logger.debug("could not tell node %s %s: %s", node_id.hex()[:12], msg, e)

    async def _dial(self, node_id: bytes) -> Connection:
        node = self.record(node_id)
        address = reach_address(node, self.daemon.settings.node_ip) if node else None
        if address is None or not node.get("Alive"):
            raise NodeUnreachable(f"node {node_id.hex()[:12]} is dead or not in the cluster")
        daemon = self.daemon
        try:
            conn = await asyncio.wait_for(
                connect(address, daemon, daemon.token, CONFIG.max_frame_bytes),
                CONFIG.head_connect_timeout_s,
            )
        except (OSError, asyncio.TimeoutError) as e:
            raise NodeUnreachable(f"node {node_id.hex()[:12]} at {address}: {e}") from None
        self._conns[node_id] = conn
        return conn
