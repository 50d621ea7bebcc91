"""``Queue``: a first-in first-out queue shared by tasks and actors, held by one async actor.

Ray's ``ray.util.queue``, built only on minray's public API. The items live in
an ``asyncio.Queue`` inside ``_QueueActor``; the ``Queue`` object is a thin
client holding the actor's handle, so it pickles and can be passed to tasks and
actors, which then all use the same queue.

Errors follow Ray, including one asymmetry worth knowing:

* a non-blocking call that cannot proceed (``block=False``, ``*_nowait``)
  raises a plain ``Empty`` / ``Full`` here in the caller;
* a blocking call whose timeout expires raises ``Empty`` / ``Full`` *inside the
  actor*, so the caller gets ``RayTaskError(Empty)`` / ``RayTaskError(Full)``
  (still an instance of ``Empty`` / ``Full``, with the remote traceback);
* the batch calls are all-or-nothing and also fail inside the actor.

After ``shutdown()`` the handle is gone and every call raises AttributeError.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterable
from typing import Any

import minray
from minray.exceptions import RayActorError


class Empty(queue.Empty):
    """Raised when getting from an empty queue (non-blocking, or after a timeout)."""


class Full(queue.Full):
    """Raised when putting into a full queue (non-blocking, or after a timeout)."""


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


def _consume_exit_error(ref: Any) -> None:
    """Fetch the result of ``__ray_terminate__`` (an ActorDiedError) so it is not reported."""
    try:
        minray.get(ref)
    except RayActorError:
        pass


class _QueueActor:
    """The queue's owner: an asyncio.Queue served by an async actor.

    Blocking calls wait in the actor; the ``*_nowait`` calls answer at once with
    a success flag so the client can raise the plain error itself.
    """

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self.queue: asyncio.Queue = asyncio.Queue(maxsize)

    async def qsize(self) -> int:
        return self.queue.qsize()

    async def empty(self) -> bool:
        return self.queue.empty()

    async def full(self) -> bool:
        return self.queue.full()

    async def put(self, item: Any, timeout: float | None = None) -> None:
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
        except asyncio.TimeoutError:
            raise Full from None

    async def get(self, timeout: float | None = None) -> Any:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            raise Empty from None

    async def put_nowait(self, item: Any) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    async def get_nowait(self) -> tuple[bool, Any]:
        try:
            return True, self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return False, None

    async def put_nowait_batch(self, items: list) -> None:
        if self.maxsize > 0 and len(items) + self.queue.qsize() > self.maxsize:
            raise Full(
                f"Cannot add {len(items)} items to queue of size {self.queue.qsize()} "
                f"and maxsize {self.maxsize}."
            )
        for item in items:
            self.queue.put_nowait(item)

    async def get_nowait_batch(self, num_items: int) -> list:
        if num_items > self.queue.qsize():
            raise Empty(f"Cannot get {num_items} items from queue of size {self.queue.qsize()}.")
        return [self.queue.get_nowait() for _ in range(num_items)]


class Queue:
    """A FIFO queue usable from the driver, tasks and actors.

    ``maxsize <= 0`` means unbounded. ``actor_options`` are passed to the
    backing actor's ``.options()`` (for example ``{"num_cpus": 0}`` or a name).
    """

    def __init__(self, maxsize: int = 0, actor_options: dict | None = None):
        self.maxsize = maxsize
        actor_cls = minray.remote(_QueueActor).options(**(actor_options or {}))
        self.actor = actor_cls.remote(maxsize)

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        """The number of items in the queue."""
        return minray.get(self.actor.qsize.remote())

    def qsize(self) -> int:
        """The number of items in the queue (as ``queue.Queue.qsize``)."""
        return self.size()

    def empty(self) -> bool:
        """Whether the queue is empty."""
        return minray.get(self.actor.empty.remote())

    def full(self) -> bool:
        """Whether the queue is full (never true for an unbounded queue)."""
        return minray.get(self.actor.full.remote())

    # --- put ----------------------------------------------------------------------------

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add an item, waiting up to ``timeout`` seconds (forever if None) for room."""
        if not block:
            if not minray.get(self.actor.put_nowait.remote(item)):
                raise Full
            return
        _check_timeout(timeout)
        minray.get(self.actor.put.remote(item, timeout))

    async def put_async(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """``put`` for asyncio code: awaits instead of blocking the thread."""
        if not block:
            if not await self.actor.put_nowait.remote(item):
                raise Full
            return
        _check_timeout(timeout)
        await self.actor.put.remote(item, timeout)

    def put_nowait(self, item: Any) -> None:
        """Add an item if there is room; raise Full otherwise."""
        self.put(item, block=False)

    def put_nowait_batch(self, items: Iterable) -> None:
        """Add all items at once if they all fit; otherwise add none and raise Full."""
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        minray.get(self.actor.put_nowait_batch.remote(list(items)))

    # --- get ----------------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return an item, waiting up to ``timeout`` seconds (forever if None)."""
        if not block:
            found, item = minray.get(self.actor.get_nowait.remote())
            if not found:
                raise Empty
            return item
        _check_timeout(timeout)
        return minray.get(self.actor.get.remote(timeout))

    async def get_async(self, block: bool = True, timeout: float | None = None) -> Any:
        """``get`` for asyncio code: awaits instead of blocking the thread."""
        if not block:
            found, item = await self.actor.get_nowait.remote()
            if not found:
                raise Empty
            return item
        _check_timeout(timeout)
        return await self.actor.get.remote(timeout)

    def get_nowait(self) -> Any:
        """Remove and return an item if one is there; raise Empty otherwise."""
        return self.get(block=False)

    def get_nowait_batch(self, num_items: int) -> list:
        """Remove and return ``num_items`` items if there are that many; otherwise raise Empty."""
        if not isinstance(num_items, int):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        return minray.get(self.actor.get_nowait_batch.remote(num_items))

    # --- end ----------------------------------------------------------------------------

    def shutdown(self, force: bool = False, grace_period_s: float = 5) -> None:
        """Stop the backing actor; items still in the queue are lost.

        Without ``force`` the actor first finishes the calls it has (waiting up
        to ``grace_period_s`` seconds), then it is killed.
        """
        if self.actor is not None:
            if force:
                minray.kill(self.actor, no_restart=True)
            else:
                done = self.actor.__ray_terminate__.remote()
                ready, _ = minray.wait([done], timeout=grace_period_s)
                if ready:
                    _consume_exit_error(done)
                else:
                    minray.kill(self.actor, no_restart=True)
        self.actor = None


__all__ = ["Empty", "Full", "Queue"]
