"""A member node's link to the head: join, heartbeat, keep the pushed cluster view.

The node connects to the head over TCP with the cluster token, registers, then
sends a heartbeat every ``heartbeat_interval_s`` (with its free resources when
they changed). The head pushes ``ClusterView`` on every change; the node keeps
the last one to answer ``nodes()`` for its own drivers without asking.

If the connection to the head is lost, the node keeps running and tries to
register again, with the same id, for up to ``head_reconnect_timeout_s`` (backing
off from 0.1 s to 2 s between tries): a head restarted on the same address takes
its saved tables back and gives its members that long to return
(head/saved_tables.py). On the re-join the node says which actors it is home to
and which placement-group bundles it holds (the head reconciles them with its
groups: head/bundle_reconcile.py), and sends its resources with the next heartbeat.
It also sends again the task events it passed on in the last ``RESEND_TASK_EVENTS_S``
before the head was lost: a restarted head saves its task table once a second,
so it had not saved those yet (the table takes an event twice alike).
Meanwhile requests that need the head wait for it (node/actor_forwarding.py), and
one-way messages for it (an actor gone, a job finished, a group removed) are kept,
up to ``HELD_MESSAGES``, and sent in order once it is back. The node stops, as before, when
the head refuses it (it was declared dead), when the head said it was stopping
for good (``HeadStopping``), or when the time is up: anything it runs would be
orphaned. Stopping ends its workers and unlinks its shared memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..config import CONFIG
from ..head.query import HeadUnreachable, connect_to_head
from ..head.service import PYTHON_VERSION
from ..protocol.connection import Connection, RemoteError
from ..protocol.messages import Message, NodeHeartbeat, RegisterNode, TaskEvents, UnregisterNode

logger = logging.getLogger("minray.node")

#: one-way messages for the head kept while reconnecting; past it the oldest are dropped
HELD_MESSAGES = 10_000
#: seconds of task events sent again after a reconnect (more than the head's
#: TASK_SAVE_INTERVAL_S, head/saved_tables.py), and at most how many messages of them
RESEND_TASK_EVENTS_S = 3.0
RESEND_MESSAGES = 1000


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
        self._address = ""  #: where this node listens (as registered)
        self._head_stopping = ""  #: why the head said it stops for good ("": it did not)
        self.connected = asyncio.Event()  #: set while registered with the head
        self.reconnecting: asyncio.Task | None = None
        self._held: deque[Message] = deque()  #: messages for the head while it is away
        #: (when, message) of the task events sent in the last RESEND_TASK_EVENTS_S
        self._recent: deque[tuple[float, TaskEvents]] = deque()
        self._dropped = 0  #: of them, how many did not fit

    async def join(self, address: str, resources: dict, info: dict) -> None:
        """Connect and register; raises HeadUnreachable with a reason a user can act on."""
        self._address = address
        await self._register(resources, info, None, None, CONFIG.head_connect_timeout_s)

    async def _register(
        self, resources: dict, info: dict, actors: list | None, bundles: list | None, timeout: float
    ) -> None:
        """Connect and register (``actors``, ``bundles``: on a re-join); HeadRefused if
        refused."""
        conn = await connect_to_head(self.head_address, self, self.token, timeout)
        register = RegisterNode(
            self.node_id, self._address, resources, info, __version__, PYTHON_VERSION, actors,
            bundles,
        )  # fmt: skip
        try:
            reply = await asyncio.wait_for(conn.request(register), timeout)
        except RemoteError as e:
            conn.close()
            raise HeadRefused(f"the head refused this node: {e}") from e
        except (ConnectionError, asyncio.TimeoutError) as e:
            conn.close()
            raise HeadUnreachable(f"the head at {self.head_address} did not answer ({e})") from e
        self.conn = conn
        self._apply_view(reply.nodes)
        conn.close_callbacks.append(self._closed)
        self.connected.set()

    def tell(self, msg: Message) -> None:
        """Send a one-way message to the head; while reconnecting, keep it for later."""
        if self.connected.is_set():
            self.conn.send(msg)
            if type(msg) is TaskEvents:
                self._keep_recent(msg)
        elif self.reconnecting is not None and not self.reconnecting.done():
            if len(self._held) >= HELD_MESSAGES:
                self._held.popleft()
                self._dropped += 1
            self._held.append(msg)

    async def connection(self) -> Connection:
        """The connection to the head; while reconnecting, once it is back (or the node
        gave up: then the closed one, whose requests raise ConnectionLost)."""
        if not self.connected.is_set() and self.reconnecting is not None:
            await asyncio.wait([self.reconnecting], timeout=CONFIG.head_reconnect_timeout_s + 5)
        return self.conn

    async def _reconnect(self, lost: str) -> None:
        """Register again until the head is back, it refuses, or the time is up."""
        limit = CONFIG.head_reconnect_timeout_s
        deadline = time.monotonic() + limit
        logger.warning("%s; trying to reconnect for up to %g s", lost, limit)
        delay, why = 0.1, lost
        while not self._leaving:
            try:
                node = self.node
                actors = node.actors_at_home() if node is not None else []
                bundles = node.held_bundles_report() if node is not None else []
                info = node.node_info() if node is not None else {}
                total = self._total() if self._total is not None else info.get("Resources", {})
                wait = max(0.1, min(CONFIG.head_connect_timeout_s, deadline - time.monotonic()))
                await self._register(total, info, actors, bundles, wait)
            except HeadRefused as e:
                self._on_lost(str(e))
                return
            except HeadUnreachable as e:
                why = str(e)
            else:
                self._sent = self._sent_pending = self._sent_total = None  # all sent again
                logger.warning("reconnected to the head at %s", self.head_address)
                self._send_recent()
                self._send_held()
                if self.on_view is not None:
                    self.on_view()
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(min(delay, remaining))
            delay = min(2 * delay, 2.0)
        if not self._leaving:
            self._on_lost(f"{lost}, and it was not back within {limit:g} s ({why})")

    def _keep_recent(self, msg: TaskEvents) -> None:
        now = time.monotonic()
        recent = self._recent
        recent.append((now, msg))
        while now - recent[0][0] > RESEND_TASK_EVENTS_S or len(recent) > RESEND_MESSAGES:
            recent.popleft()

    def _send_recent(self) -> None:
        """The task events sent just before the head was lost, again (its drop counts
        were told once already)."""
        while self._recent:
            msg = self._recent.popleft()[1]
            self.conn.send(TaskEvents(msg.events, 0, msg.source))

    def _send_held(self) -> None:
        if self._dropped:
            logger.warning("%d message(s) for the head were dropped while it was away (more "
                           "than %d)", self._dropped, HELD_MESSAGES)  # fmt: skip
        while self._held:
            self.conn.send(self._held.popleft())
        self._dropped = 0

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
        if self.reconnecting is not None:
            self.reconnecting.cancel()
        conn = self.conn
        if conn is None or conn.closed:
            return
        try:
            await asyncio.wait_for(conn.request(UnregisterNode(self.node_id, reason)), 1.0)
        except (ConnectionError, RemoteError, asyncio.TimeoutError):
            pass
        conn.close()

    def handle_ClusterView(self, conn: Connection, msg) -> None:
        self._apply_view(msg.nodes)
        if self.on_view is not None:
            self.on_view()

    def handle_HeadStopping(self, conn: Connection, msg) -> None:
        self._head_stopping = msg.reason or "it was stopped"

    def _apply_view(self, nodes: list) -> None:
        for node in nodes:  # the nodes that changed since the last push (or all)
            before = self.view.get(node["NodeID"])
            self.view[node["NodeID"]] = node
            died = not node["Alive"] and (before is None or before["Alive"])
            if died and self.on_node_dead is not None:
                self.on_node_dead(bytes.fromhex(node["NodeID"]))

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
        if self._leaving or conn is not self.conn:
            return
        self.connected.clear()
        lost = f"lost the connection to the head at {self.head_address}"
        if self._head_stopping:
            self._on_lost(f"the head at {self.head_address} stopped ({self._head_stopping})")
        elif CONFIG.head_reconnect_timeout_s <= 0:
            self._on_lost(lost)
        elif self.reconnecting is None or self.reconnecting.done():
            self.reconnecting = asyncio.get_running_loop().create_task(self._reconnect(lost))


class HeadRefused(HeadUnreachable):
    """The head answered and refused this node (declared dead, another version)."""
