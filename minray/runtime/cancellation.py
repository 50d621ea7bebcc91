"""Cancelling a task by its ObjectRef, whoever holds the ref, and what it submitted.

A mixin of :class:`~minray.runtime.core_worker.CoreWorker`. Only a task's owner
knows where it is (queued, waiting for a lease, running on a worker), so a
process that borrowed the ref sends ``CancelOwnedTask`` to the owner, which
cancels it as if it had been asked itself. (``CancelTask`` is the owner's
message to the worker that runs the task.)

``recursive`` (Ray's default) follows the tree of submissions: the worker told
to cancel a task first cancels, as their owner, the tasks and actor calls that
task submitted (each TaskSpec names its ``parent``), recursively in turn, and
only then interrupts the task. With ``force``, the child tasks are forced too,
but actor calls never are (as in Ray), and the worker exits only once those
cancels have left.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..protocol.connection import Connection
from ..protocol.messages import CancelOwnedTask

if TYPE_CHECKING:
    from .core_worker import CoreWorker

#: how long a worker cancelled with force=True waits for its children's cancels to leave
EXIT_FLUSH_S = 1.0
_EXIT_POLL_S = 0.01


class Cancellation:
    """Cancelling tasks owned here, or asking their owner to."""

    async def cancel_task(
        self: CoreWorker, task_id: bytes, owner: str | None, force: bool, recursive: bool
    ) -> None:
        """Loop thread: cancel the task that makes an object owned by ``owner``."""
        if owner and owner != self.address:
            conn = await self.peer(owner)  # OSError if the owner is gone: nothing to cancel
            conn.send(CancelOwnedTask(task_id, force, recursive))
            return
        self.cancel_owned(task_id, force, recursive)

    def cancel_owned(
        self: CoreWorker, task_id: bytes, force: bool, recursive: bool
    ) -> Connection | None:
        """Loop thread: cancel a task of this process; returns the connection the cancel
        went on to the process running it, if it was sent."""
        if self.actors.is_actor_call(task_id):
            return self.actors.cancel(task_id, recursive)
        return self.submitter.cancel(task_id, force, recursive)

    def cancel_children(self: CoreWorker, task_id: bytes, force: bool) -> list[Connection]:
        """Loop thread: cancel (recursively) the tasks and actor calls that ``task_id``
        submitted from this process; returns the connections the cancels went on."""
        sent = [
            self.submitter.cancel(child, force, True)
            for child in self.submitter.children_of(task_id)
        ]
        sent += [self.actors.cancel(child, True) for child in self.actors.children_of(task_id)]
        return [conn for conn in sent if conn is not None]

    def exit_once_sent(self: CoreWorker, conns: list[Connection], waited: float = 0.0) -> None:
        """Loop thread: end this process (force=True) once what was sent on ``conns`` has
        left (at most EXIT_FLUSH_S from now)."""
        if waited < EXIT_FLUSH_S and not all(conn.written() for conn in conns):
            self.loop.call_later(_EXIT_POLL_S, self.exit_once_sent, conns, waited + _EXIT_POLL_S)
            return
        os._exit(1)

    def handle_CancelOwnedTask(self: CoreWorker, conn: Connection, msg: CancelOwnedTask) -> None:
        self.cancel_owned(msg.task_id, msg.force, msg.recursive)
