"""A member node's link to the head: join, heartbeat, keep the pushed cluster view.

The node connects to the head over TCP with the cluster token, registers, then
sends a heartbeat every ``heartbeat_interval_s`` (with its free resources when
they changed). The head pushes ``ClusterView`` on every change; the node keeps
the last one to answer ``nodes()`` for its own drivers without asking.

If the connection to the head is lost, the node stops: the head has declared
it dead, or is itself gone, so anything it runs would be orphaned. Stopping
ends its workers and unlinks its shared memory, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..config import CONFIG
from ..head.query import HeadUnreachable, connect_to_head
from ..head.service import PYTHON_VERSION
from ..protocol.connection import Connection, RemoteError
from ..protocol.messages import NodeHeartbeat, RegisterNode, UnregisterNode

logger = logging.getLogger("minray.node")


class HeadClient:
    """Handler of the connection to the head (it pushes ``ClusterView``)."""

    def __init__(
        self,
        node_id: bytes,
        head_address: str,
        token: bytes,
        available: Callable[[], dict],
        on_lost: Callable[[str], None],
        pending: Callable[[], list] = list,
        total: Callable[[], dict] | None = None,
    ):
        self.node_id = node_id
        self.head_address = head_address
        self.token = token
        self._available = available
        self._pending = pending
        self._total = total
        self._sent_total: dict | None = None
        #: the node daemon: it holds the bundles the head places here (PrepareBundles...)
        self.node: Any = None
        #: called after each pushed view (the node moves queued requests then)
        self.on_view: Callable[[], None] | None = None
        self._sent_pending: list | None = []
        self._on_lost = on_lost
        self.conn: Connection | None = None
        self.view: dict[str, dict] = {}  #: node id (hex) -> the node's last pushed record
        #: called with the id of each node the head declared dead
        self.on_node_dead: Callable[[bytes], None] | None = None
        self._sent: dict | None = None
        self._leaving = False

    async def join(self, address: str, resources: dict, info: dict) -> None:
        """Connect and register; raises HeadUnreachable with a reason a user can act on."""
        timeout = CONFIG.head_connect_timeout_s
        self.conn = await connect_to_head(self.head_address, self, self.token, timeout)
        register = RegisterNode(self.node_id, address, resources, info, __version__, PYTHON_VERSION)
        try:
            reply = await asyncio.wait_for(
                self.conn.request(register), CONFIG.head_connect_timeout_s
            )
        except RemoteError as e:
            self.conn.close()
            raise HeadUnreachable(f"the head refused this node: {e}") from e
        except (ConnectionError, asyncio.TimeoutError) as e:
            raise HeadUnreachable(f"the head at {self.head_address} did not answer ({e})") from e
        self.view = {node["NodeID"]: node for node in reply.nodes}
        self.conn.close_callbacks.append(self._closed)

    async def heartbeat(self, stopped: asyncio.Event) -> None:
        """Send a heartbeat every interval until the node stops."""
        while not stopped.is_set():
            available, pending = self._available(), self._pending()
            total = self._total() if self._total is not None else None
            changed = available if available != self._sent else None
            waiting = pending if pending != self._sent_pending else None
            grown = total if total != self._sent_total else None
            if self.conn is not None and not self.conn.closed:
                self.conn.send(NodeHeartbeat(self.node_id, changed, waiting, grown))
                self._sent, self._sent_pending, self._sent_total = available, pending, total
            try:
                await asyncio.wait_for(stopped.wait(), CONFIG.heartbeat_interval_s)
            except asyncio.TimeoutError:
                pass

    async def leave(self, reason: str) -> None:
        """Tell the head this node is going (best effort), then close."""
        self._leaving = True
        conn = self.conn
        if conn is None or conn.closed:
            return
        try:
            await asyncio.wait_for(conn.request(UnregisterNode(self.node_id, reason)), 1.0)
        except (ConnectionError, RemoteError, asyncio.TimeoutError):
            pass
        conn.close()

    def handle_ClusterView(self, conn: Connection, msg) -> None:
        for node in msg.nodes:  # the nodes that changed since the last push
            before = self.view.get(node["NodeID"])
            self.view[node["NodeID"]] = node
            died = not node["Alive"] and (before is None or before["Alive"])
            if died and self.on_node_dead is not None:
                self.on_node_dead(bytes.fromhex(node["NodeID"]))
        if self.on_view is not None:
            self.on_view()

    # the head places placement-group bundles here: the node holds them
    def handle_PrepareBundles(self, conn: Connection, msg):
        return self.node.handle_PrepareBundles(conn, msg)

    def handle_CommitBundles(self, conn: Connection, msg) -> None:
        self.node.handle_CommitBundles(conn, msg)

    def handle_ReturnBundles(self, conn: Connection, msg) -> None:
        self.node.handle_ReturnBundles(conn, msg)

    def handle_GetLog(self, conn: Connection, msg):
        return self.node.handle_GetLog(conn, msg)

    def handle_GetStates(self, conn: Connection, msg):
        return self.node.handle_GetStates(conn, msg)  # (node_only: the head asks each node)

    # `minray chaos`, passed on by the head (node/fault_injection.py)
    def handle_KillWorker(self, conn: Connection, msg):
        return self.node.handle_KillWorker(conn, msg)

    def handle_KillNode(self, conn: Connection, msg):
        return self.node.handle_KillNode(conn, msg)

    # stacks and profiles of this node's processes (node/profile_handlers.py)
    def handle_GetStacks(self, conn: Connection, msg):
        return self.node.handle_GetStacks(conn, msg)

    def handle_ProfileProcess(self, conn: Connection, msg):
        return self.node.handle_ProfileProcess(conn, msg)

    def _closed(self, conn: Connection) -> None:
        if not self._leaving:
            self._on_lost(f"lost the connection to the head at {self.head_address}")
