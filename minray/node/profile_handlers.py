"""A node's part in profiling: it passes ``GetStacks`` and ``ProfileProcess`` to the
process they name, or to the head when that process is not known to be here.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. A request whose ``node_id`` is
this node's goes to the worker hosting ``actor_id``, or to the worker or driver
``worker_id``, over the connection that process opened to this node; any other
goes to the head, which finds the process's node and passes it there
(head/profile_service.py). The wait for the process is bounded: it may take the
profile's duration plus ``ANSWER_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..protocol.connection import Connection, ConnectionLost, RemoteError
from ..protocol.messages import (
    GONE,
    NO_ANSWER,
    NOT_FOUND,
    NOT_NOW,
    ErrorReply,
    GetStacks,
    Message,
    ProfileProcess,
)
from ..runtime.stacks import ANSWER_TIMEOUT_S

if TYPE_CHECKING:
    from .daemon import NodeDaemon


class ProfileHandlers:
    """``handle_GetStacks`` and ``handle_ProfileProcess``, mixed into the node daemon."""

    def handle_GetStacks(self: NodeDaemon, conn: Connection | None, msg: GetStacks):
        return self._to_process(msg, ANSWER_TIMEOUT_S)

    def handle_ProfileProcess(self: NodeDaemon, conn: Connection | None, msg: ProfileProcess):
        return self._to_process(msg, msg.duration_s + ANSWER_TIMEOUT_S)

    def _to_process(self: NodeDaemon, msg: GetStacks | ProfileProcess, timeout: float):
        if msg.node_id != self.settings.node_id:
            return self._head_answer(msg)  # the head finds the process's node
        target = self._process_conn(msg.worker_id, msg.actor_id)
        if isinstance(target, ErrorReply):
            return target
        return self._ask_process(target, msg, timeout)

    def _process_conn(
        self: NodeDaemon, worker_id: bytes, actor_id: bytes
    ) -> Connection | ErrorReply:
        """The connection of the process a request names, or why there is none here."""
        where = f"node {self.settings.node_id.hex()[:12]}"
        if actor_id:
            worker = next(
                (w for w in self.workers.values() if w.actor and w.actor.actor_id == actor_id),
                None,
            )
            what = f"actor {actor_id.hex()}"
        else:
            worker = self.workers.get(worker_id)
            what = f"worker {worker_id.hex()}"
            if worker is None:  # a driver of this node?
                for client in self.drivers:
                    if client.info.get("worker_id") == worker_id and not client.closed:
                        return client
        if worker is None:
            return ErrorReply(NOT_FOUND, f"{what} has no process on {where} (has it exited?)")
        if worker.conn is None or worker.conn.closed:
            return ErrorReply(NOT_NOW, f"the process of {what} is starting or exiting; try again")
        return worker.conn

    async def _ask_process(
        self: NodeDaemon, target: Connection, msg: Message, timeout: float
    ) -> Message:
        pid = target.info.get("pid", "?")
        try:
            return await asyncio.wait_for(target.request(msg), timeout)
        except RemoteError as e:
            return ErrorReply(e.error, str(e))
        except ConnectionLost:
            return ErrorReply(GONE, f"process {pid} exited before it answered")
        except asyncio.TimeoutError:
            return ErrorReply(
                NO_ANSWER,
                f"process {pid} did not answer within {timeout:g} s (its minray-loop thread "
                "may be blocked by code that holds the GIL without releasing it)",
            )
