"""A worker's pushed tasks that wait for its main thread, and handing them back.

An owner whose tasks are short pushes a lease's next tasks before the reply to
the one running (``task_leases.Lease.depth``), so the worker starts each
without waiting a round trip. Such a task is *held* here until the main thread
takes it. One held longer than :data:`HOLD_S` goes back to its owner unstarted
(``TaskReply.app_error == TASK_NOT_STARTED``): the task ahead of it is long, or
blocks in ``get`` on work that may need the held task itself, and the owner
can run it on another worker instead. So a task never waits behind another
for longer than that, and pipelining cannot deadlock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core_worker import CoreWorker

#: the longest a pushed task waits behind the running one before it goes back
HOLD_S = 0.002


class HeldTasks:
    """Pushed tasks not yet started: their reply -> (message, when it came). (By reply, not
    task id: a task handed back may come again while its first push still sits in the
    main thread's queue, and only the second one may run.)"""

    def __init__(self, worker: CoreWorker, give_back: Callable) -> None:
        self._worker = worker  #: (its loop starts after this is made)
        self._give_back = give_back  #: loop thread: (message, reply) of a task handed back
        self._held: dict[object, tuple] = {}
        self._timer: asyncio.TimerHandle | None = None

    def hold(self, msg, reply) -> None:
        """Loop thread: a task came; the main thread takes it, or it goes back."""
        loop = self._worker.loop
        self._held[reply] = (msg, loop.time())
        if self._timer is None:
            self._timer = loop.call_later(HOLD_S, self._check)

    def take(self, reply) -> bool:
        """Main thread: start the task pushed with ``reply``, unless it went back already
        (one atomic pop: the loop thread's ``_hand_back`` and this never both get it)."""
        return self._held.pop(reply, None) is not None

    def give_back(self, task_id: bytes) -> bool:
        """Loop thread: hand the task back unstarted if it is still held (for a cancel)."""
        for reply, (msg, _) in list(self._held.items()):
            if msg.task_id == task_id and self._hand_back(reply):
                return True
        return False

    def _hand_back(self, reply) -> bool:
        item = self._held.pop(reply, None)
        if item is None:
            return False  # the main thread took it
        self._give_back(item[0], reply)
        return True

    def _check(self) -> None:
        self._timer = None
        loop = self._worker.loop
        now = loop.time()
        for reply, (_, since) in list(self._held.items()):
            if now - since >= HOLD_S:
                self._hand_back(reply)
        oldest = min((item[1] for item in list(self._held.values())), default=None)
        if oldest is not None:
            self._timer = loop.call_later(max(0.0, oldest + HOLD_S - now), self._check)
