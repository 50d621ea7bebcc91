"""Faults on purpose (``minray chaos``): a node kills one of its workers, or itself.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. The CLI picks what to kill
from the state API and sends ``KillWorker``/``KillNode`` to the head, which
passes it to the node that runs the process; only that node kills, by pid, so
it works when the CLI runs on another machine. The rule it keeps: only worker
processes busy with a task or an actor can be killed this way (never a driver,
the node itself or its zygote), and only a node that is not the head can crash.
The kills look like crashes to the rest of the cluster (SIGKILL; a node exits
without leaving), so the normal recovery paths run; a crashed node still
unlinks its shared memory first, so a chaos run leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from ..object_store import shm
from ..protocol.connection import Connection
from ..protocol.messages import ErrorReply, KillNode, KillWorker, ProcessKilled
from .processes import kill, stop_workers

if TYPE_CHECKING:
    from .daemon import NodeDaemon, WorkerRecord

logger = logging.getLogger("minray.node")


class FaultInjection:
    """``handle_KillWorker`` and ``handle_KillNode``, mixed into the node daemon."""

    def handle_KillWorker(self: NodeDaemon, conn: Connection | None, msg: KillWorker):
        worker = next((w for w in self.workers.values() if w.pid == msg.pid), None)
        where = f"node {self.settings.node_id.hex()[:12]} ({self.settings.node_ip})"
        if worker is None or worker.conn is None:
            return ErrorReply("ValueError", f"pid {msg.pid} is not a worker of {where}")
        what = self.work_of(worker)
        if not what:
            return ErrorReply(
                "ValueError", f"worker pid {msg.pid} of {where} is idle: it runs no task now"
            )
        logger.warning("chaos: killing worker pid %d (%s), as asked", msg.pid, what)
        kill(msg.pid)  # its connection closes: the usual worker-death path follows
        return self._killed(msg.pid, what)

    def work_of(self: NodeDaemon, worker: WorkerRecord) -> str:
        """What the worker does, in words ("task f", "actor Counter (name c)"); "" if idle."""
        if worker.actor is not None:
            record = self.actors.get(worker.actor.actor_id)
            class_name = record.class_name if record is not None else worker.actor.class_name
            name = f" (name {record.name})" if record is not None and record.name else ""
            return f"actor {class_name or '?'}{name} {worker.actor.actor_id.hex()[:12]}"
        if worker.lease is not None:
            return f"task {worker.lease.task_name or '?'}"
        return ""

    def handle_KillNode(self: NodeDaemon, conn: Connection | None, msg: KillNode):
        if self.head is not None:
            return ErrorReply(
                "ValueError",
                "this node is the head: killing it would end the cluster; "
                "`minray chaos kill-node` picks other nodes",
            )
        count = sum(1 for w in self.workers.values() if w.pid)
        logger.warning("chaos: this node crashes now with its %d worker(s), as asked", count)
        asyncio.get_running_loop().create_task(self._crash(conn))
        return self._killed(os.getpid(), f"node with {count} worker(s)")

    def _killed(self: NodeDaemon, pid: int, what: str) -> ProcessKilled:
        return ProcessKilled(pid, self.settings.node_ip, self.settings.node_id, what)

    async def _crash(self: NodeDaemon, conn: Connection | None) -> None:
        """Exit as a crash would (no goodbye to the head), once the answer has left,
        but kill the workers and unlink the segments first: nothing is left behind."""
        for _ in range(100):  # at most ~1 s
            if conn is None or conn.written():
                break
            await asyncio.sleep(0.01)
        self._stopping = True  # the connections closing now are no news to act on
        self.zygote.close()
        await stop_workers(self.zygote.pid, {w.pid for w in self.workers.values() if w.pid})
        for segment in self.store.all_segments():
            shm.unlink(segment)
        logging.shutdown()
        os._exit(1)
