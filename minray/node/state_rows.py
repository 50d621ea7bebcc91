"""What a node tells the state API about itself (its actors, its worker processes and the
ones that have exited), and the task events its clients send, passed on to the head.
Its processes' stacks and profiles come with it (ProfileHandlers).

A mixin of :class:`~minray.node.daemon.NodeDaemon`. ``GetStates`` from a client
goes to the head, which asks every live node (``node_only``) and merges the
rows; the rows are plain dicts with Ray's column names (see
minray/util/state/common.py). The "departed" rows (the last ``DEPARTED_KEPT``
workers and drivers of this node that exited) let a reader whose object's owner
died say which process that was (``runtime/object_reader.py``).
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import TYPE_CHECKING

import psutil

from ..protocol.connection import Connection
from ..protocol.messages import (
    ActorState,
    ErrorReply,
    GetLog,
    GetObjectRows,
    GetStates,
    GetTasks,
    LogChunk,
    States,
    TaskEvents,
)
from .profile_handlers import ProfileHandlers

if TYPE_CHECKING:
    from .daemon import NodeDaemon

#: seconds a process may take to list the objects it references
OBJECT_ROWS_TIMEOUT_S = 2.0

#: Ray's names for the actor states
_ACTOR_STATES = {
    ActorState.PENDING: "PENDING_CREATION",
    ActorState.ALIVE: "ALIVE",
    ActorState.RESTARTING: "RESTARTING",
    ActorState.DEAD: "DEAD",
}


#: how many exited workers and drivers a node remembers
DEPARTED_KEPT = 1000


class StateRows(ProfileHandlers):
    """``handle_GetStates``, and task events on their way to the head, mixed into the
    node daemon; with the stacks and profiles of its processes (node/profile_handlers.py)."""

    departed: collections.deque  #: rows of this node's exited workers and drivers

    def _init_state_rows(self: NodeDaemon) -> None:
        self.departed = collections.deque(maxlen=DEPARTED_KEPT)

    def note_departed(self: NodeDaemon, conn: Connection) -> None:
        """Remember a worker or driver of this node whose connection closed (it exited)."""
        worker = conn.info.get("worker")
        if worker is None and "job_id" not in conn.info:
            return  # a link from another node's process (its own node remembers it)
        worker_id = conn.info.get("worker_id", b"")
        self.departed.append(
            {
                "worker_id": worker_id.hex(),
                "worker_type": "WORKER" if worker is not None else "DRIVER",
                "pid": conn.info.get("pid"),
                "ip": self.settings.node_ip,
                "node_id": self.settings.node_id.hex(),
                "address": conn.info.get("address", ""),
                "end_time_ms": int(time.time() * 1000),
                "log": self.settings.worker_log(worker_id, "err") if worker is not None else "",
            }
        )

    def handle_TaskEvents(self: NodeDaemon, conn: Connection | None, msg: TaskEvents) -> None:
        self._tell_head(msg)  # the head keeps the task table (head/task_table.py)

    def handle_GetTasks(self: NodeDaemon, conn: Connection | None, msg: GetTasks):
        return self._head_answer(msg)

    def handle_GetLog(self: NodeDaemon, conn: Connection | None, msg: GetLog):
        """A worker's log: read here if it is this node's, else asked of the head, which
        passes it to the worker's node."""
        if msg.node_id == self.settings.node_id:
            return read_log(self.settings.worker_log(msg.worker_id, msg.stream), msg)
        return self._head_answer(msg)

    def handle_GetStates(self: NodeDaemon, conn: Connection | None, msg: GetStates):
        if msg.node_only and msg.kind == "objects":
            return asyncio.ensure_future(self._objects_answer())
        if msg.node_only:
            return States(self.state_rows(msg.kind), [])
        return self._head_answer(msg)

    async def _objects_answer(self: NodeDaemon) -> States:
        return States(await self.node_state_rows("objects"), [])

    async def node_state_rows(self: NodeDaemon, kind: str) -> list[dict]:
        """This node's rows of ``kind``; "objects" are asked of each of its processes
        (those that do not answer within OBJECT_ROWS_TIMEOUT_S are left out)."""
        if kind != "objects":
            return self.state_rows(kind)
        conns = [w.conn for w in self.workers.values() if w.conn is not None]
        conns += [c for c in self.drivers if "job_id" in c.info]  # (not other nodes' links)
        replies = await asyncio.gather(
            *(
                asyncio.wait_for(c.request(GetObjectRows()), OBJECT_ROWS_TIMEOUT_S)
                for c in conns
                if not c.closed
            ),
            return_exceptions=True,
        )
        return [row for r in replies if not isinstance(r, BaseException) for row in r.rows]

    def state_rows(self: NodeDaemon, kind: str) -> list[dict]:
        """This node's rows of ``kind`` ("actors" kept here, "workers", or "departed")."""
        if kind == "actors":
            return [self._actor_row(record) for record in self.actors.actors.values()]
        if kind == "workers":
            return self._worker_rows()
        if kind == "departed":
            return list(self.departed)
        if kind == "node":  # this node's info, live, with its machine's use (for /metrics)
            memory = psutil.virtual_memory()
            return [{**self.node_info(), "CpuPercent": psutil.cpu_percent(None),
                     "MemoryUsedBytes": memory.total - memory.available,
                     "MemoryTotalBytes": memory.total}]  # fmt: skip
        raise ValueError(
            f"unknown kind of state {kind!r}: use 'actors', 'workers', 'departed', 'node' or "
            "'objects'"
        )

    def _actor_row(self: NodeDaemon, record) -> dict:
        me = self.settings.node_id
        host = record.host or (me if record.state != ActorState.DEAD or record.pid else b"")
        owner = record.owner if isinstance(record.owner, Connection) else None
        return {
            "actor_id": record.actor_id.hex(),
            "class_name": record.class_name,
            "state": _ACTOR_STATES.get(record.state, str(record.state)),
            "job_id": owner.info.get("job_id", b"").hex() if owner is not None else "",
            "name": record.name,
            "node_id": host.hex() if host else None,
            "pid": record.pid or None,
            "ray_namespace": record.namespace,
            "is_detached": record.detached,
            "num_restarts": record.restarts,
            "death_cause": {"message": record.death_cause} if record.death_cause else None,
        }

    def _worker_rows(self: NodeDaemon) -> list[dict]:
        node, ip = self.settings.node_id.hex(), self.settings.node_ip
        rows = []
        for worker in self.workers.values():
            actor = getattr(worker.actor, "actor_id", None)
            rows.append(
                {
                    "worker_id": worker.worker_id.hex(),
                    "is_alive": True,
                    "worker_type": "WORKER",
                    "node_id": node,
                    "ip": ip,
                    "pid": worker.pid,
                    "actor_id": actor.hex() if actor else None,
                    "busy": worker.lease is not None or actor is not None,
                }
            )
        for conn in self.drivers:
            if conn.closed or "job_id" not in conn.info:
                continue
            rows.append(
                {
                    "worker_id": conn.info.get("worker_id", b"").hex(),
                    "is_alive": True,
                    "worker_type": "DRIVER",
                    "node_id": node,
                    "ip": ip,
                    "pid": conn.info.get("pid"),
                    "actor_id": None,
                    "busy": True,
                }
            )
        return rows


def read_log(path: str, msg: GetLog) -> LogChunk | ErrorReply:
    """Up to ``msg.max_bytes`` of the file from ``msg.offset`` (negative: from the end)."""
    if msg.stream not in ("out", "err"):
        return ErrorReply("ValueError", f"stream must be 'out' or 'err', got {msg.stream!r}")
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            start = max(0, size + msg.offset) if msg.offset < 0 else min(msg.offset, size)
            f.seek(start)
            data = f.read(max(0, min(msg.max_bytes, 4 << 20)))
    except FileNotFoundError:
        return ErrorReply("ValueError", f"no log for worker {msg.worker_id.hex()} on this node")
    return LogChunk(data, start + len(data), size)
