"""Lineage: the finished tasks an owner keeps so it can run them again (pure; no I/O).

A task's result in shared memory lives on one node; if that node dies, the value
is gone, but the owner still has the task that made it. The owner keeps that
task (its spec) while any of its results is in use, or while a kept task that
took one of its results as an argument is kept (a *dependent*), so lost
arguments can be rebuilt first, recursively.

What a kept task holds on to:

* arguments that can themselves be rebuilt (results of tasks this process owns
  whose lineage is kept) are *linked*: only their lineage is kept, so their
  values can be freed like any other;
* every other argument (small values, ``put`` objects, refs owned by other
  processes, refs nested in the arguments) keeps its count, so its value stays
  while the task may have to run again.

Lineage is kept within a byte budget (``Config.max_lineage_bytes``); past it the
oldest kept tasks are dropped (*evicted*), and a loss of their results is then
reported as such. The methods return what the I/O layer must release.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from .. import ids

#: bytes counted for a kept task besides its pickled arguments
ENTRY_OVERHEAD = 256
#: task ids remembered as evicted, or as never kept, for the errors of later losses
REMEMBERED = 100_000


@dataclass(slots=True)
class Kept:
    spec: Any  #: the TaskSpec (arguments resolved again when it re-runs)
    size: int
    live: set  #: its return ids still in use
    linked: list  #: argument ids whose own lineage keeps them rebuildable
    dependents: int = 0  #: kept tasks that linked one of our results
    running: bool = False  #: re-running now
    rebuilding: set = field(default_factory=set)  #: the ids its re-run now rebuilds


@dataclass(slots=True)
class Dropped:
    """A kept task let go: release the counts its ``spec`` kept (not the linked ones)."""

    spec: Any
    linked: list = field(default_factory=list)


class LineageTable:
    """The tasks this process may run again, by task id."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.used = 0
        #: task id -> Kept (a plain check of this dict is the hot path's whole cost)
        self.kept: collections.OrderedDict[bytes, Kept] = collections.OrderedDict()
        #: task id -> why its results cannot be rebuilt ("evicted", "max_retries", ...)
        self._gone: collections.OrderedDict[bytes, str] = collections.OrderedDict()

    def __contains__(self, task_id: bytes) -> bool:
        return task_id in self.kept

    def __len__(self) -> int:
        return len(self.kept)

    def get(self, task_id: bytes) -> Kept | None:
        return self.kept.get(task_id)

    def why_not_kept(self, task_id: bytes) -> str | None:
        return self._gone.get(task_id)

    def _remember(self, task_id: bytes, why: str) -> None:
        self._gone[task_id] = why
        self._gone.move_to_end(task_id)
        while len(self._gone) > REMEMBERED:
            self._gone.popitem(last=False)

    # --- a task finished ---------------------------------------------------------------

    def finished(
        self, spec: Any, rebuildable: bool, in_use: set, args: list, why_not: str = ""
    ) -> tuple[list, list]:
        """Task ``spec`` finished; ``rebuildable``: it succeeded with a result in shared
        memory and may run again. ``in_use``: its return ids still referenced; ``args``:
        its ref argument ids owned by this process.

        Returns ``(release, dropped)``: argument ids whose submitted count to release
        now, and kept tasks let go (see :class:`Dropped`).
        """
        task_id = spec.task_id
        kept = self.kept.get(task_id)
        if kept is not None:  # it ran again
            kept.running = False
            if rebuildable:
                kept.live = set(in_use)
                return list(kept.linked), self._drop_if_unused(kept)
            # it failed this time: its results are errors now, nothing to rebuild
            return list(kept.linked), self._drop(task_id)
        if not rebuildable:
            if why_not:
                self._remember(task_id, why_not)
            return [], [Dropped(spec)]
        linked = [a for a in args if a[: ids.TASK_ID_SIZE] in self.kept]
        for object_id in linked:
            self.kept[object_id[: ids.TASK_ID_SIZE]].dependents += 1
        size = len(spec.args_blob) + ENTRY_OVERHEAD
        self.kept[task_id] = Kept(spec, size, set(in_use), linked)
        self.used += size
        dropped = self._drop_if_unused(self.kept[task_id])
        return linked, dropped + self._evict()

    def _evict(self) -> list:
        dropped: list = []
        while self.used > self.budget and self.kept:
            oldest = next((tid for tid, k in self.kept.items() if not k.running), None)
            if oldest is None:
                break
            self._remember(oldest, "evicted")
            dropped += self._drop(oldest)
        return dropped

    # --- results freed -----------------------------------------------------------------

    def result_freed(self, object_id: bytes) -> list:
        """A return value of a kept task is no longer in use; returns what is let go."""
        kept = self.kept.get(object_id[: ids.TASK_ID_SIZE])
        if kept is None:
            return []
        kept.live.discard(object_id)
        return self._drop_if_unused(kept)

    def _drop_if_unused(self, kept: Kept) -> list:
        if kept.live or kept.dependents or kept.running:
            return []
        return self._drop(kept.spec.task_id)

    def _drop(self, task_id: bytes) -> list:
        """Let a kept task go, and with it those kept only for it (no recursion)."""
        dropped: list = []
        pending = [task_id]
        while pending:
            kept = self.kept.pop(pending.pop(), None)
            if kept is None:
                continue
            self.used -= kept.size
            dropped.append(Dropped(kept.spec, kept.linked))
            for object_id in kept.linked:
                parent = self.kept.get(object_id[: ids.TASK_ID_SIZE])
                if parent is not None:
                    parent.dependents -= 1
                    if not (parent.live or parent.dependents or parent.running):
                        pending.append(parent.spec.task_id)
        return dropped

    # --- running again -----------------------------------------------------------------

    def start_rerun(self, task_id: bytes, needed: list) -> Kept | None:
        """Mark a kept task as running again for the return ids ``needed``; None if it
        is not kept. (Whether it may run again is the caller's question.)"""
        kept = self.kept.get(task_id)
        if kept is None:
            return None
        kept.running = True
        kept.live.update(needed)
        kept.rebuilding = set(needed)
        return kept
