"""Cancelling a task by its ObjectRef, whoever holds the ref.

A mixin of :class:`~minray.runtime.core_worker.CoreWorker`. Only a task's owner
knows where it is (queued, waiting for a lease, running on a worker), so a
process that borrowed the ref sends ``CancelOwnedTask`` to the owner, which
cancels it as if it had been asked itself. (``CancelTask`` is the owner's
message to the worker that runs the task.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol.connection import Connection
from ..protocol.messages import CancelOwnedTask

if TYPE_CHECKING:
    from .core_worker import CoreWorker


class Cancellation:
    """Cancelling tasks owned here, or asking their owner to."""

    async def cancel_task(self: CoreWorker, task_id: bytes, owner: str | None, force: bool) -> None:
        """Loop thread: cancel the task that makes an object owned by ``owner``."""
        if owner and owner != self.address:
            conn = await self.peer(owner)  # OSError if the owner is gone: nothing to cancel
            conn.send(CancelOwnedTask(task_id, force))
            return
        self.cancel_owned(task_id, force)

    def cancel_owned(self: CoreWorker, task_id: bytes, force: bool) -> None:
        if not self.actors.cancel(task_id):
            self.submitter.cancel(task_id, force)

    def handle_CancelOwnedTask(self: CoreWorker, conn: Connection, msg: CancelOwnedTask) -> None:
        self.cancel_owned(msg.task_id, msg.force)
