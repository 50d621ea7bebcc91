"""Handing work from any thread to the loop thread, one wake-up per batch."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core_worker import CoreWorker


class Inbox:
    """Items put from any thread are passed to ``handle`` on the loop thread, in order.

    Only the first put after a drain wakes the loop; later ones join that batch.
    """

    __slots__ = ("_worker", "_handle", "_items", "_scheduled")

    def __init__(self, worker: CoreWorker, handle: Callable[[Any], None]):
        self._worker = worker
        self._handle = handle
        self._items: collections.deque = collections.deque()
        self._scheduled = False

    def put(self, item: Any) -> None:
        self._items.append(item)
        if not self._scheduled:
            self._scheduled = True
            self._worker.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        self.drain()

    def drain(self) -> None:
        """Loop thread: handle what was put so far, now (the wake-up then finds less)."""
        while self._items:
            self._handle(self._items.popleft())

    def __bool__(self) -> bool:
        return bool(self._items)
