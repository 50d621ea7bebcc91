"""Rebuilding lost objects by running their tasks again (lineage reconstruction).

A mixin of :class:`~minray.runtime.core_worker.CoreWorker`, on the loop thread.
When no copy of an owned object is left (``runtime/lost_objects.py`` looked),
it is rebuilt from the lineage, which this module also keeps.

A lost result of a task kept in the lineage (``runtime/lineage.py``) is rebuilt:
its arguments that were lost or freed are rebuilt first, then the task runs again
(counting against its ``max_retries``) and its results replace the lost ones;
``get`` calls waiting meanwhile simply get the new value. What cannot be rebuilt
becomes an error at ``get``: ``ObjectLostError`` for ``put`` objects and actor
calls' results, ``ObjectReconstructionFailedMaxAttemptsExceededError`` when no
retries are left, ``ObjectReconstructionFailedLineageEvictedError`` when the task
was no longer kept.

What was rebuilt is shown: the owner counts each object's rebuilds
(``reconstructed``; ``list_objects`` rows say ``reconstructions``), and the
re-run attempt's task events carry ``attempt_reason="RECONSTRUCTION"`` (a retry
after a failure says ``"RETRY"``), which ``list_tasks`` and the dashboard show.
"""

from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING

from .. import ids
from ..exceptions import (
    ObjectLostError,
    ObjectReconstructionFailedLineageEvictedError,
    ObjectReconstructionFailedMaxAttemptsExceededError,
)
from ..protocol.messages import FreeObjects, ValueKind
from .lineage import LineageTable

if TYPE_CHECKING:
    from .core_worker import CoreWorker
    from .task_spec import TaskSpec

logger = logging.getLogger("minray")

#: objects whose rebuilds an owner remembers at most (the oldest are forgotten)
MAX_COUNTED = 10_000


class Reconstruction:
    """The owner's side: keep lineage, run tasks again."""

    def init_lineage(self: CoreWorker) -> None:
        self.lineage = LineageTable(self.config.max_lineage_bytes)
        #: counts for tests and the chaos tools: tasks run again, objects they rebuilt
        self.rebuilt = {"tasks": 0, "objects": 0}
        #: object id -> times it was rebuilt (while it lives; list_objects shows it)
        self.reconstructed: dict[bytes, int] = {}

    # --- a task finished: keep it, or let its arguments go ----------------------------------

    def task_done(self: CoreWorker, spec: TaskSpec, returns: list | None) -> None:
        """Loop thread: ``spec`` finished (``returns``: its reply's entries if it succeeded).
        Keeps it in the lineage if a result is in shared memory and it may run again."""
        for value in spec.fetched:
            self.release_holds(value.refs)
        spec.fetched = ()
        shared = False
        for entry in returns or ():
            if entry[0] == ValueKind.SHARED:
                shared = True
                break
        kept = self.lineage.kept
        if not shared and not (kept and spec.task_id in kept):  # (most tasks: nothing to keep)
            arguments = spec.argument_ref_ids()
            if arguments:
                self.update_refs(self.refs.remove_submitted, arguments)
            return
        why_not = ""
        if shared and spec.max_retries == 0:
            why_not = "max_retries"
        elif shared and spec.generator is not None:
            why_not = "generator"
        rebuildable = shared and not why_not
        in_use: set = set()
        owned_args: list = []
        if rebuildable:
            in_use = {r for r in spec.return_ids if r in self.refs}
            owned_args = [oid for _, oid, owner in spec.placeholders if owner == self.address]
            spec.resolved = spec.resolved_refs = ()  # values are looked up again on a re-run
        release, dropped = self.lineage.finished(spec, rebuildable, in_use, owned_args, why_not)
        self._release_lineage(release, dropped)

    def _release_lineage(self: CoreWorker, release: list, dropped: list) -> None:
        for gone in dropped:
            ids_ = gone.spec.argument_ref_ids()
            for linked in gone.linked:
                ids_.remove(linked)  # only their lineage was kept, not their counts
            release += ids_
        if release:
            self.update_refs(self.refs.remove_submitted, release)

    def result_freed(self: CoreWorker, object_id: bytes) -> None:
        """A kept task's result is no longer in use (its value was freed)."""
        self.reconstructed.pop(object_id, None)
        dropped = self.lineage.result_freed(object_id)
        if dropped:
            self._release_lineage([], dropped)

    def replaced_value(self: CoreWorker, object_id: bytes, old, kind: int, payload) -> list:
        """A re-run's result replaces a value still held (a sibling of a lost one): the
        refs inside the old value lose their hold; its segment, if on another node than
        the new one, is freed there (on the same node the new one took its place).
        Called under the CoreWorker's lock; returns the ReferenceCounter's actions."""
        if old.kind == ValueKind.SHARED:
            same_node = kind == ValueKind.SHARED and payload[2] == old.payload[2]
            if not same_node:
                self.call_soon(self.nodes.send, old.payload[2], FreeObjects([object_id]))
        return self.refs.clear_contains(object_id)

    def _store_error(self: CoreWorker, object_id: bytes, error: BaseException) -> None:
        if object_id in self.refs:
            self.store_returns([object_id], [[ValueKind.ERROR, pickle.dumps(error), []]], "")

    # --- running a task again -------------------------------------------------------------

    def rebuild_lost(self: CoreWorker, object_id: bytes, where: str) -> None:
        """No copy of an owned object is left (``where`` says why): run its task again,
        or store the error a ``put`` object gets."""
        self.update_refs(self.refs.clear_contains, object_id)  # the re-run stores new ones
        if ids.object_index(object_id) != 0:
            self.rebuild(object_id[: ids.TASK_ID_SIZE], [object_id], where)
            return
        self._store_error(
            object_id,
            ObjectLostError(
                object_id.hex(),
                f"{where} Objects made by minray.put() cannot be rebuilt: put it again, or "
                "make it with a task (whose result is rebuilt by running the task again).",
            ),
        )

    def rebuild(self: CoreWorker, task_id: bytes, needed: list, where: str) -> None:
        """Run kept task ``task_id`` again for its results ``needed`` (in use again, or
        lost), rebuilding its freed arguments first; or store why it cannot run."""
        for object_id in needed:
            if object_id not in self.refs:  # freed, and needed by a dependent again
                self.refs.add_owned(object_id)
        kept = self.lineage.get(task_id)
        if kept is not None and kept.running:  # already running again: they come with it
            kept.live.update(needed)
            self._count_rebuilds([oid for oid in needed if oid not in kept.rebuilding])
            kept.rebuilding.update(needed)
            return
        spec = kept.spec if kept is not None else None
        if spec is None:
            error = self._not_kept_error(task_id, needed[0], where)
        elif spec.max_retries != -1 and spec.attempts >= spec.max_retries:
            error = ObjectReconstructionFailedMaxAttemptsExceededError(
                needed[0].hex(),
                f"{where} Its task {spec.name} ran {spec.attempts + 1} time(s), and "
                f"max_retries={spec.max_retries} allows no more. Raise max_retries "
                "(-1: no limit) to let lost objects be rebuilt.",
            )
        else:
            error = None
        if error is not None:
            for object_id in needed:
                self._store_error(object_id, error)
            return
        self.lineage.start_rerun(task_id, needed)
        for object_id in kept.linked:
            if object_id not in self.refs:  # freed since: rebuild it too (errors included)
                self.rebuild(object_id[: ids.TASK_ID_SIZE], [object_id], where)
            self.refs.add_submitted([(object_id, self.address)])
        spec.attempts += 1
        spec.attempt_reason = "RECONSTRUCTION"
        self._count_rebuilds(needed)
        spec.resolved = spec.resolved_refs = spec.fetched = ()
        spec.cancelled = False
        self.rebuilt["tasks"] += 1
        self.rebuilt["objects"] += len(needed)
        logger.warning(
            "Object %s was lost. %s Running task %s again to rebuild it (attempt %d).",
            needed[0].hex(), where, spec.name, spec.attempts + 1,
        )  # fmt: skip
        self.submitter.submit(spec)

    def _count_rebuilds(self: CoreWorker, object_ids: list) -> None:
        counts = self.reconstructed
        for object_id in object_ids:
            counts[object_id] = counts.pop(object_id, 0) + 1  # (moved to the newest end)
        while len(counts) > MAX_COUNTED:
            del counts[next(iter(counts))]

    def _not_kept_error(self: CoreWorker, task_id: bytes, object_id: bytes, where: str):
        why = self.lineage.why_not_kept(task_id)
        if why == "evicted":
            return ObjectReconstructionFailedLineageEvictedError(
                object_id.hex(),
                f"{where} Its task was no longer kept: the lineage of finished tasks was "
                "over its budget (max_lineage_bytes), and the oldest were dropped. Raise "
                "MINRAY_MAX_LINEAGE_BYTES, or keep fewer objects alive at once.",
            )
        if why == "max_retries":
            return ObjectReconstructionFailedMaxAttemptsExceededError(
                object_id.hex(),
                f"{where} Its task has max_retries=0, so it may not run again to rebuild "
                "it; give the task max_retries > 0 (the default is 3).",
            )
        return ObjectLostError(
            object_id.hex(),
            f"{where} It was made by an actor call or a generator, whose results are not "
            "rebuilt (as in Ray): make it again.",
        )
