"""The head's part in profiling: find the node that runs the process a ``GetStacks`` or
``ProfileProcess`` names, and pass the request there.

A mixin of :class:`~minray.head.service.HeadService`; the dashboard
(head/dashboard_profile.py) calls it in-process, ``minray stack`` over a
connection. The process is found as the state API finds it: an actor by its row
(the node hosting it, its state), a worker or driver by the workers' rows; an
exited one by the rows of departed processes, so the answer says "exited" rather
than "unknown". The request then goes the way ``GetLog`` goes
(``_pass_to_node``), and every wait is bounded.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..protocol.connection import Connection
from ..protocol.messages import (
    GONE,
    NOT_FOUND,
    NOT_NOW,
    ErrorReply,
    GetStacks,
    GetStates,
    ProfileProcess,
)
from ..runtime.stacks import ANSWER_TIMEOUT_S

if TYPE_CHECKING:
    from .service import HeadService


class ProfileService:
    """``handle_GetStacks`` and ``handle_ProfileProcess`` at the head."""

    async def handle_GetStacks(self: HeadService, conn: Connection | None, msg: GetStacks):
        return await self._to_process_node(msg, 2 * ANSWER_TIMEOUT_S)

    async def handle_ProfileProcess(
        self: HeadService, conn: Connection | None, msg: ProfileProcess
    ):
        return await self._to_process_node(msg, msg.duration_s + 2 * ANSWER_TIMEOUT_S)

    async def _to_process_node(self: HeadService, msg, timeout: float):
        if not msg.node_id:
            node_id = await self.node_of_process(msg.worker_id, msg.actor_id)
            if isinstance(node_id, ErrorReply):
                return node_id
            msg = dataclasses.replace(msg, node_id=node_id)
        return await self._pass_to_node(msg, f"handle_{type(msg).__name__}", timeout)

    async def node_of_process(
        self: HeadService, worker_id: bytes, actor_id: bytes
    ) -> bytes | ErrorReply:
        """The node that runs the worker hosting ``actor_id`` (or the worker or driver
        ``worker_id``), or an ErrorReply saying why there is none to ask."""
        if not worker_id and not actor_id:
            return ErrorReply("ValueError", "name an actor or a worker to sample")
        if actor_id:
            states = await self.handle_GetStates(None, GetStates("actors", False))
            row = next((r for r in states.rows if r["actor_id"] == actor_id.hex()), None)
            if row is None:
                return ErrorReply(NOT_FOUND, _unknown(f"actor {actor_id.hex()}", states.missing))
            if row["state"] == "DEAD":
                cause = (row.get("death_cause") or {}).get("message", "")
                why = f": {cause.splitlines()[0]}" if cause else ""
                return ErrorReply(GONE, f"actor {actor_id.hex()} is dead{why}")
            if row["state"] != "ALIVE" or not row["node_id"]:
                return ErrorReply(
                    NOT_NOW,
                    f"actor {actor_id.hex()} is {row['state']}: it has no process to sample "
                    "now; try again once it is ALIVE",
                )
            return bytes.fromhex(row["node_id"])
        states = await self.handle_GetStates(None, GetStates("workers", False))
        row = next((r for r in states.rows if r["worker_id"] == worker_id.hex()), None)
        if row is not None:
            return bytes.fromhex(row["node_id"])
        departed = await self.handle_GetStates(None, GetStates("departed", False))
        if any(r["worker_id"] == worker_id.hex() for r in departed.rows):
            return ErrorReply(GONE, f"worker {worker_id.hex()} has exited")
        return ErrorReply(NOT_FOUND, _unknown(f"worker {worker_id.hex()}", states.missing))


def _unknown(what: str, missing: list) -> str:
    note = f" (nodes that did not answer: {', '.join(missing)})" if missing else ""
    return f"no {what} in this cluster{note}; `minray list` shows the ids"
