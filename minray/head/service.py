"""The head's membership service: nodes join over TCP, heartbeat, and are seen to die.

It wires the pure :class:`~minray.head.node_table.NodeTable` to connections.

1. A node connects to the head's port; the HMAC handshake with the cluster
   token runs before anything else is decoded (protocol/framing.py).
2. It sends ``RegisterNode`` (its id, resources, how to reach it, its minray
   and Python versions). Another minray or Python version is refused, both
   versions named: pickles do not cross Python versions.
3. It sends ``NodeHeartbeat`` every ``heartbeat_interval_s``, with its free
   resources when they changed.
4. The head pushes ``ClusterView`` to every member when the view changed
   (coalesced over a short delay), so nodes never poll. A push carries only the
   nodes that changed since the last one (a member got the whole view when it
   registered), and is encoded once for all members: with N nodes, a change
   costs O(N) bytes, not O(N²).
5. A node that leaves (``UnregisterNode``), whose connection closes, or that
   is silent past ``node_death_timeout_s``, is marked dead, for good.

The head's own node is in the table too; its figures are read live. Drivers and
tools ask ``GetClusterInfo``. Requests about one node's processes (``GetLog``,
``minray chaos``'s ``KillWorker``/``KillNode``, ``GetStacks``/``ProfileProcess``) are
passed to that node.
Actor homes and names are in actor_service.py, placement groups in
placement_service.py; what is saved to disk so a restarted head takes the tables
back, and how, in saved_tables.py. A node that registers again with its id (it
lost the head and reconnected) keeps its record and says which actors it is home
to and which placement-group bundles it holds, so the names, homes and groups
agree with what it really runs and holds.
This service never runs user code and never unpickles: it sees msgpack fields
only.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import __version__
from ..ids import actor_creation_task_id
from ..protocol import framing
from ..protocol.connection import Connection, RemoteError
from ..protocol.messages import (
    ClusterInfo,
    ClusterView,
    ErrorReply,
    GetLog,
    GetStates,
    HeadStopping,
    JobAdded,
    Jobs,
    KillNode,
    KillWorker,
    KvReply,
    KvRequest,
    Message,
    NodeRegistered,
    Ok,
    States,
    TaskEvents,
    Tasks,
)
from .actor_homes import ActorHomes
from .actor_service import ActorService
from .job_table import JobTable
from .kv import InternalKV, KvFull
from .node_table import NodeRecord, NodeTable
from .package_service import PackageService
from .placement import bundle_resources
from .placement_service import PlacementService
from .profile_service import ProfileService
from .saved_tables import SavedTables
from .task_table import TaskTable

if TYPE_CHECKING:
    from .job_manager import JobManager  # (made only with a dashboard: node/membership.py)

logger = logging.getLogger("minray.head")

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
#: seconds a burst of changes is gathered before one ClusterView goes out
PUSH_DELAY_S = 0.02
#: seconds a node has to send its rows for the state API
STATE_TIMEOUT_S = 5.0


def version_problem(version: str, python: str) -> str:
    """Why a peer of this minray and Python version cannot join ("" if it can)."""
    if version != __version__:
        return (
            f"this node runs minray {version}, the head runs minray {__version__}; "
            "install the same minray version on every machine of the cluster"
        )
    if python != PYTHON_VERSION:
        return (
            f"this node runs Python {python}, the head runs Python {PYTHON_VERSION}; "
            "pickled functions and values do not cross Python versions, so every "
            "machine of the cluster needs the same Python minor version"
        )
    return ""


class HeadService(ActorService, PackageService, PlacementService, ProfileService, SavedTables):
    """Membership (the node table, the members' connections, pushes and the detector), the
    actor homes and names (head/actor_service.py), placement groups
    (head/placement_service.py), runtime_env packages (head/package_service.py), the way
    to a process's stacks (head/profile_service.py) and the tables saved for a restart
    (head/saved_tables.py)."""

    def __init__(
        self,
        local_id: bytes,
        local_info: Callable[[], dict],
        death_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.table = NodeTable(death_timeout_s)
        self.actor_homes = ActorHomes()
        self.kv = InternalKV()
        self.jobs = JobTable()
        self.tasks = TaskTable()
        #: runs submitted jobs; set by a head that listens for drivers over TCP (the job
        #: API of the dashboard, head/job_routes.py, answers 503 without it)
        self.job_manager: JobManager | None = None
        self.session_dir = ""  #: the head node's session directory, once it is known
        #: called with each batch of task events once the table has them (the dashboard's
        #: live task graph listens; nothing is called while the list is empty)
        self.task_listeners: list[Callable[[list], None]] = []
        #: called with the id of each node declared dead (the head node's own reaction)
        self.on_node_dead: Callable[[bytes], None] | None = None
        #: called after each push of the view (the head node moves queued requests then)
        self.on_view_pushed: Callable[[], None] | None = None
        #: the head node's (total, free) resources, read live (else from local_info)
        self.local_resources: Callable[[], tuple[dict, dict]] | None = None
        self._init_placement()
        self._placement_soon = False
        self.local_id = local_id
        self._local_info = local_info  #: the head node's own info, read live
        self._clock = clock
        self.members: dict[bytes, Connection] = {}
        self._dirty: set[bytes] = set()  #: nodes changed since the last push
        self._push_handle: asyncio.TimerHandle | None = None
        info = local_info()
        self._local_available = info["AvailableResources"]
        self.table.register(local_id, info["RayletSocketName"], info["Resources"], clock())

    # --- queries -------------------------------------------------------------------------

    def nodes_info(self) -> list[dict]:
        """Every node ever registered, in Ray's ``nodes()`` shape."""
        out = []
        for record in self.table.nodes.values():
            if record.node_id == self.local_id:
                out.append(self._local_info())
            else:
                out.append(_info(record))
        return out

    # --- handlers (on the head's TCP listener) --------------------------------------------

    def handle_RegisterNode(self, conn: Connection, msg) -> NodeRegistered | ErrorReply:
        problem = version_problem(msg.version, msg.python)
        if problem:
            logger.warning("refused node %s: %s", msg.node_id.hex()[:12], problem)
            return ErrorReply("VersionMismatch", problem)
        try:
            record = self.table.register(msg.node_id, msg.address, msg.resources, self._clock())
        except ValueError as e:
            return ErrorReply("NodeDiedError", str(e))
        record.info = dict(msg.info)
        if msg.actors is not None:  # a node back after losing the head
            self._actors_rejoined(msg.node_id, msg.actors)
        self._save_node(msg.node_id)
        conn.info["node_id"] = msg.node_id
        old = self.members.get(msg.node_id)
        self.members[msg.node_id] = conn
        if old is not None and old is not conn:
            old.close()
        conn.close_callbacks.append(self._member_closed)
        if msg.bundles is not None:  # (after the line above: the answers go to this conn)
            self._bundles_rejoined(msg.node_id, msg.bundles)
        logger.info("node %s joined from %s", msg.node_id.hex()[:12], msg.address)
        self._changed(msg.node_id)
        return NodeRegistered(self.local_id, self.nodes_info())

    def handle_NodeHeartbeat(self, conn: Connection, msg) -> None:
        if conn.info.get("node_id") != msg.node_id:
            conn.abort("heartbeat for a node this connection did not register")
            return
        version = self.table.version
        now = self._clock()
        if not self.table.heartbeat(msg.node_id, now, msg.available, msg.pending, msg.total):
            conn.abort("heartbeat from a node already declared dead")
            return
        if self.table.version != version:
            self._changed(msg.node_id)

    def handle_UnregisterNode(self, conn: Connection, msg) -> Ok:
        if conn.info.get("node_id") == msg.node_id:
            self._mark_dead(msg.node_id, msg.reason or "the node left the cluster")
        return Ok()

    def handle_GetClusterInfo(self, conn: Connection, msg) -> ClusterInfo:
        return ClusterInfo(self.nodes_info())

    def handle_AddJob(self, conn: Connection | None, msg) -> JobAdded:
        job_id = self.jobs.add(msg.node_id, msg.info, time.time())
        self._save_job(job_id)
        return JobAdded(job_id)

    def handle_JobFinished(self, conn: Connection | None, msg) -> None:
        if self.jobs.finish(msg.job_id, time.time()):
            self._save_job(msg.job_id)

    def handle_GetJobs(self, conn: Connection | None, msg) -> Jobs:
        return Jobs(self.jobs.describe())

    async def handle_GetLog(self, conn: Connection | None, msg: GetLog):
        """Pass a log request to the worker's node (read in-process on the head node)."""
        return await self._pass_to_node(msg, "handle_GetLog")

    async def handle_KillWorker(self, conn: Connection | None, msg: KillWorker):
        """``minray chaos``: the worker's node kills it (node/fault_injection.py)."""
        return await self._pass_to_node(msg, "handle_KillWorker")

    async def handle_KillNode(self, conn: Connection | None, msg: KillNode):
        return await self._pass_to_node(msg, "handle_KillNode")

    async def _pass_to_node(self, msg: Message, handler: str, timeout: float = STATE_TIMEOUT_S):
        """The answer of node ``msg.node_id`` to ``msg`` (its ``handler`` on the head
        node itself, awaited if it answers later); an ErrorReply when that node is not
        alive or does not answer within ``timeout`` seconds."""
        if msg.node_id == self.local_id and self.local_node is not None:
            answer = getattr(self.local_node, handler)(None, msg)
            return await answer if inspect.isawaitable(answer) else answer
        member = self.members.get(msg.node_id)
        if member is None or member.closed:
            return ErrorReply("ValueError", f"node {msg.node_id.hex()} is not alive")
        try:
            return await asyncio.wait_for(member.request(msg), timeout)
        except RemoteError as e:
            return ErrorReply(e.error, str(e))
        except ConnectionError:
            return ErrorReply("ValueError", f"node {msg.node_id.hex()} left before it answered")
        except asyncio.TimeoutError:
            return ErrorReply(
                "TimeoutError", f"node {msg.node_id.hex()} did not answer within {timeout:g} s"
            )

    def handle_TaskEvents(self, conn: Connection | None, msg: TaskEvents) -> None:
        self.tasks.add(msg.events, msg.dropped, msg.source)
        for listener in self.task_listeners:
            listener(msg.events)

    def handle_GetTasks(self, conn: Connection | None, msg) -> Tasks:
        table = self.tasks
        if msg.by_function:
            return Tasks(table.function_counts(), table.dropped)
        if msg.limit > 0 and not msg.task_id and len(table.attempts) > msg.limit:
            return Tasks(table.oldest(msg.limit), table.dropped, len(table.attempts))
        return Tasks(table.rows(msg.task_id), table.dropped)

    async def handle_GetStates(self, conn: Connection | None, msg: GetStates) -> States:
        """Rows of ``msg.kind`` from every live node (those that do not answer within a
        few seconds are named in ``missing``)."""
        rows = []
        if self.local_node is not None:
            rows = await self.local_node.node_state_rows(msg.kind)
        ask = GetStates(msg.kind, True)
        members = [(node_id, conn) for node_id, conn in self.members.items() if not conn.closed]
        replies = await asyncio.gather(
            *(asyncio.wait_for(c.request(ask), STATE_TIMEOUT_S) for _, c in members),
            return_exceptions=True,
        )
        missing = []
        for (node_id, _), reply in zip(members, replies):
            if isinstance(reply, BaseException):
                missing.append(node_id.hex())
            else:
                rows += reply.rows
        if msg.kind == "actors":
            self._actor_reasons(rows)
        return States(rows, missing)

    def _actor_reasons(self, rows: list[dict]) -> None:
        """Why each actor waiting to be created waits: its creation task's reason."""
        for row in rows:
            if row["state"] not in ("PENDING_CREATION", "RESTARTING"):
                continue
            actor_id = bytes.fromhex(row["actor_id"])
            if row.get("job_id"):
                task_id = actor_creation_task_id(actor_id, bytes.fromhex(row["job_id"]))
            else:  # (an actor a worker created: its job is its creation task id's end)
                task_id = self.tasks.first_starting_with(actor_id)
            row["pending_reason"] = self.tasks.pending_reason(task_id)

    def handle_KvRequest(self, conn: Connection | None, msg: KvRequest) -> KvReply | ErrorReply:
        kv, ns, key = self.kv, msg.namespace, msg.key
        if msg.op == "put":
            try:
                existed = kv.put(ns, key, msg.value, msg.flag)
            except KvFull as e:
                return ErrorReply("ValueError", str(e))
            if msg.flag or not existed:
                self._save_kv(ns, key)
            return KvReply(existed)
        if msg.op == "get":
            return KvReply(kv.get(ns, key))
        if msg.op == "exists":
            return KvReply(kv.exists(ns, key))
        if msg.op == "del":
            gone = kv.keys(ns, key) if msg.flag else [key]
            count = kv.delete(ns, key, msg.flag)
            for name in gone:
                self._save_kv(ns, name)
            return KvReply(count)
        if msg.op == "keys":
            return KvReply(kv.keys(ns, key))
        return ErrorReply("ValueError", f"unknown internal KV operation {msg.op!r}")

    # --- changes -------------------------------------------------------------------------

    def local_changed(self) -> None:
        """The head node's own resources changed: tell the members (coalesced)."""
        self.table.version += 1
        self._changed(self.local_id)

    def expire(self) -> list[NodeRecord]:
        """Run the death detector now; returns the nodes it declared dead. The head's own
        node lives as long as this process: it is never found silent."""
        now = self._clock()
        self.table.heartbeat(self.local_id, now)
        dead = self.table.expire(now)
        for record in dead:
            logger.warning("node %s is dead: %s", record.node_id.hex()[:12], record.death_reason)
            self._node_dead(record.node_id)
            conn = self.members.pop(record.node_id, None)
            if conn is not None:
                conn.close()
            self._changed(record.node_id)
        return dead

    async def run_detector(self, stopped: asyncio.Event) -> None:
        """Check for silent nodes at each deadline (at least every second)."""
        while not stopped.is_set():
            deadline = self.table.next_deadline()
            wait = 1.0 if deadline is None else max(0.05, deadline - self._clock() + 0.01)
            try:
                await asyncio.wait_for(stopped.wait(), min(wait, 1.0))
            except asyncio.TimeoutError:
                self.expire()
                self._check_local()
                if self.groups_waiting:
                    self.place_pending()

    def close(self) -> None:
        """The head stops on purpose: its members stop too, without waiting for it."""
        if self._push_handle is not None:
            self._push_handle.cancel()
        for conn in list(self.members.values()):
            conn.send(HeadStopping("the head was stopped"))
            conn.close()
        self.members.clear()
        self.close_store()

    # --- internals -----------------------------------------------------------------------

    def _check_local(self) -> None:
        """Members learn the head node's free resources within a second of a change."""
        available = self._local_info()["AvailableResources"]
        if available != self._local_available:
            self._local_available = available
            self.local_changed()

    def _member_closed(self, conn: Connection) -> None:
        node_id = conn.info.get("node_id")
        if node_id is not None and self.members.get(node_id) is conn:
            del self.members[node_id]
            self._mark_dead(node_id, f"its connection to the head closed ({conn.close_reason})")

    def _mark_dead(self, node_id: bytes, reason: str) -> None:
        record = self.table.remove(node_id, reason)
        if record is not None:
            logger.warning("node %s is dead: %s", node_id.hex()[:12], reason)
            self._node_dead(node_id)
            self._changed(node_id)

    def _node_dead(self, node_id: bytes) -> None:
        self._rehome_actors(node_id)
        self._groups_of_dead_node(node_id)
        for job_id in self.jobs.node_died(node_id, time.time()):
            self._save_job(job_id)
        self._save_node(node_id)
        if self.on_node_dead is not None:
            self.on_node_dead(node_id)

    def _changed(self, node_id: bytes) -> None:
        self._dirty.add(node_id)
        if self._push_handle is None and self.members:
            loop = asyncio.get_running_loop()
            self._push_handle = loop.call_later(PUSH_DELAY_S, self._push)
        if self.groups_waiting and not self._placement_soon:
            self._placement_soon = True
            asyncio.get_running_loop().call_soon(self._place_soon)

    def _place_soon(self) -> None:
        self._placement_soon = False
        self.place_pending()

    def _placement_view(self) -> dict:
        """``{node: (total, free)}`` of the live nodes, the head's own first (read live)."""
        view = self.table.resource_view()
        view.pop(self.local_id, None)
        if self.local_resources is not None:
            here = {self.local_id: self.local_resources()}
        else:
            info = self._local_info()
            here = {self.local_id: (info["Resources"], info["AvailableResources"])}
        return {**here, **dict(sorted(view.items()))}

    def _bundles_added(self, node_id: bytes, group_hex: str, bundles: dict) -> None:
        """The member reserved and committed ``bundles``: the view shows it at once."""
        record = self.table.get(node_id)
        if record is not None:
            total, free = dict(record.total), dict(record.available)
            for name, amount in _summed(bundles).items():
                free[name] = free.get(name, 0.0) - amount
            for name, amount in bundle_resources(group_hex, bundles).items():
                total[name] = total.get(name, 0.0) + amount
                free[name] = free.get(name, 0.0) + amount
            self.table.adjust(node_id, total, free)
            self._changed(node_id)

    def _bundles_gone(self, node_id: bytes, group_hex: str, bundles: dict) -> None:
        record = self.table.get(node_id)
        if record is not None:
            total = {k: v for k, v in record.total.items() if not _of_group(k, group_hex)}
            free = {k: v for k, v in record.available.items() if not _of_group(k, group_hex)}
            for name, amount in _summed(bundles).items():
                free[name] = free.get(name, 0.0) + amount
            self.table.adjust(node_id, total, free)
            self._changed(node_id)

    def _push(self) -> None:
        self._push_handle = None
        changed, self._dirty = self._dirty, set()
        nodes = []
        for node_id in changed:
            if node_id == self.local_id:
                nodes.append(self._local_info())
            elif node_id in self.table.nodes:
                nodes.append(_info(self.table.nodes[node_id]))
        frame = framing.encode(ClusterView(self.table.version, nodes))
        for conn in list(self.members.values()):
            conn.send_frame(frame)
        if self.on_view_pushed is not None:
            self.on_view_pushed()


def _of_group(resource: str, group_hex: str) -> bool:
    """Whether this is one of the group's bundle resources (``CPU_group_0_<id>``...)."""
    return resource.endswith(group_hex) and "_group_" in resource


def _summed(bundles: dict) -> dict[str, float]:
    total: dict[str, float] = {}
    for bundle in bundles.values():
        for name, amount in bundle.items():
            total[name] = total.get(name, 0.0) + amount
    return total


def _info(record: NodeRecord) -> dict:
    return {
        **record.info,
        "NodeID": record.node_id.hex(),
        "Alive": record.alive,
        "Resources": dict(record.total),
        "AvailableResources": dict(record.available),
        "DeathReason": 0 if record.alive else 1,
        "DeathReasonMessage": record.death_reason,
    }
