"""Who an unreachable owner was: the OwnerDiedError a reader gets names that process.

A ref carries only its owner's address. When the owner cannot be reached, the
reader asks the cluster (``GetStates("departed")``: every node remembers the
workers and drivers of its own that exited, see ``node/state_rows.py``) for the
process that listened at that address: its pid, node and log. The answer is
kept per address, and concurrent readers of one dead owner share one question.
This runs only on the error path, never when the owner answers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..exceptions import OwnerDiedError
from ..protocol.messages import GetStates

if TYPE_CHECKING:
    from .core_worker import CoreWorker

logger = logging.getLogger("minray")

#: the owner's node may not have seen its connection close yet: ask again this often
_TRIES, _PAUSE_S, _TIMEOUT_S = 4, 0.25, 5.0
#: how long an answer is kept (a TCP port may later be another process's address)
_KEEP_S = 30.0


class DeadOwners:
    """Looks up, once per address, the process an unreachable owner was."""

    def __init__(self, worker: CoreWorker):
        self.worker = worker
        self._known: dict[str, asyncio.Task] = {}

    async def error(self, object_id: bytes, owner: str) -> OwnerDiedError:
        """The OwnerDiedError for ``object_id``, naming its owner as well as is known."""
        task = self._known.get(owner)
        if task is None:
            loop = asyncio.get_running_loop()
            task = self._known[owner] = loop.create_task(self._find(owner))
            task.add_done_callback(lambda _: loop.call_later(_KEEP_S, self._forget, owner, task))
        row = await asyncio.shield(task)
        if row is None:
            return OwnerDiedError(object_id.hex(), owner_address=owner)
        return OwnerDiedError(
            object_id.hex(),
            owner_address=owner,
            owner_pid=row.get("pid"),
            owner_ip=row.get("ip", ""),
            owner_kind=str(row.get("worker_type", "")).lower(),
            owner_log=row.get("log", ""),
        )

    def _forget(self, owner: str, task: asyncio.Task) -> None:
        if self._known.get(owner) is task:
            del self._known[owner]

    async def _find(self, owner: str) -> dict | None:
        node = self.worker.node
        for attempt in range(_TRIES):
            if attempt:
                await asyncio.sleep(_PAUSE_S)
            if node is None or node.closed:
                return None
            try:
                reply = await asyncio.wait_for(
                    node.request(GetStates("departed", False)), _TIMEOUT_S
                )
            except Exception as e:  # the error is still raised, only less precise
                logger.debug("could not ask which process %s was: %s", owner, e)
                return None
            rows = [row for row in reply.rows if row.get("address") == owner]
            if rows:  # the latest, should the address have been reused
                return max(rows, key=lambda row: row.get("end_time_ms", 0))
        return None
