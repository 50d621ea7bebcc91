"""The owner's record of one generator task's stream of items (pure; no I/O, no threads).

A generator task reports the values it yields one by one, as item 0, 1, 2, ...
The caller takes them in that order with ``next(gen)``. This record keeps:

* the items that arrived and are not taken yet (``waiting``), and how many were
  taken (``taken``, the index of the next item to hand out);
* whether the task ended, and whether it failed: a failed task hands out one
  more thing after its last item, the error (its completion ref), then stops;
* back-pressure: with a threshold ``n``, the report of item ``i`` is answered
  only once fewer than ``n`` items are left untaken (``i + 1 - taken < n``), and
  the worker waits for that answer before it makes more. The answers held back
  are kept here, in item order, until taking items releases them.

A retried task reports its items again from 0: an item that arrived before is
ignored (``arrive`` returns False). The caller may drop the generator
(``close``): items arriving later are refused, and held answers go at once.
"""

from __future__ import annotations

import enum
from typing import Any

#: the object index of a generator task's first item (index 1 is its completion ref)
FIRST_ITEM_INDEX = 2


class Next(enum.Enum):
    """What ``next(gen)`` does now."""

    ITEM = "item"  #: hand out the next item
    ERROR = "error"  #: the task failed: hand out its completion ref (get raises)
    STOP = "stop"  #: nothing more: StopIteration
    WAIT = "wait"  #: the task runs and has not reported the next item yet


class StreamState:
    """Items of one generator task, from arrival to being taken."""

    __slots__ = ("threshold", "taken", "waiting", "ended", "failed", "error_taken", "closed",
                 "_held")  # fmt: skip

    def __init__(self, threshold: int = -1):
        if threshold == 0 or threshold < -1:
            raise ValueError(f"back-pressure threshold must be -1 (none) or positive: {threshold}")
        self.threshold = threshold  #: most items left untaken before the worker waits (-1: none)
        self.taken = 0  #: items handed out so far; the next one to hand out has this index
        self.waiting: dict[int, Any] = {}  #: index -> item, arrived and not taken yet
        self.ended = False  #: the task finished (or failed): no more items will come
        self.failed = False  #: it failed: its error is handed out after the last item
        self.error_taken = False
        self.closed = False  #: the caller dropped the generator
        self._held: list[tuple[int, Any]] = []  #: (index, answer) held back, in index order

    # --- changes ---------------------------------------------------------------------------

    def arrive(self, index: int, item: Any) -> bool:
        """An item was reported; False if it is refused (seen before, or nobody listens)."""
        if self.closed or self.ended or index < self.taken or index in self.waiting:
            return False
        self.waiting[index] = item
        return True

    def end(self, failed: bool) -> None:
        """The task ended (for good: no retry follows)."""
        self.ended = True
        self.failed = failed
        self._skip_gaps()

    def take(self) -> tuple[Next, Any]:
        """Hand out what ``next(gen)`` returns now: (ITEM, item), (ERROR, None), (STOP,
        None) or (WAIT, None). Taking an item may release held answers (``release``)."""
        what = self.peek()
        if what is Next.ITEM:
            item = self.waiting.pop(self.taken)
            self.taken += 1
            self._skip_gaps()
            return what, item
        if what is Next.ERROR:
            self.error_taken = True
        return what, None

    def close(self) -> list:
        """The caller dropped the generator: returns the items never taken (to free)."""
        self.closed = True
        items = list(self.waiting.values())
        self.waiting.clear()
        return items

    # --- back-pressure ----------------------------------------------------------------------

    def answer_now(self, index: int) -> bool:
        """Whether the report of item ``index`` is answered now (else ``hold`` it)."""
        if self.threshold == -1 or self.closed or self.ended:
            return True
        return index + 1 - self.taken < self.threshold

    def hold(self, index: int, answer: Any) -> None:
        self._held.append((index, answer))
        self._held.sort(key=lambda pair: pair[0])

    def release(self) -> list:
        """Held answers that may go now (after ``take`` or ``close``)."""
        ready = []
        while self._held and self.answer_now(self._held[0][0]):
            ready.append(self._held.pop(0)[1])
        return ready

    # --- queries ----------------------------------------------------------------------------

    def peek(self) -> Next:
        """What ``take`` would hand out, without taking it."""
        if self.taken in self.waiting:
            return Next.ITEM
        if not self.ended:
            return Next.WAIT
        if self.failed and not self.error_taken:
            return Next.ERROR
        return Next.STOP

    def finished(self) -> bool:
        """Everything was handed out: ``next`` raises StopIteration (Ray's is_finished)."""
        return self.peek() is Next.STOP

    def _skip_gaps(self) -> None:
        """Once the task ended, an index that never arrived is passed over."""
        if self.ended and self.waiting and self.taken not in self.waiting:
            self.taken = min(self.waiting)
