"""The owner's side of "why is my task pending": reasons onto the tasks' events.

A task waits at its owner in one of two states (runtime/task_events.py):

* ``PENDING_ARGS_AVAIL``: the owner knows which argument objects it waits for, who
  owns each, and, for those it owns itself, where the task making it runs;
  :func:`arguments_reason` says so when the task starts waiting.
* ``PENDING_NODE_ASSIGNMENT``: it waits in the owner's queue of its resource shape
  for a lease. The node that keeps the queue's lease requests tells why each waits
  (``LeasePending``, node/pending_notices.py), only when that changes; a request
  sent on to another node (spillback) waits there, said here. The queue's reason is
  that of its oldest request (the one served first). Once a second, before the task
  events go out, :func:`record_queue_reasons` gives each task still queued a
  ``PENDING_NODE_ASSIGNMENT`` event carrying its queue's reason if the task was not
  told it yet: a task granted a worker within the second costs nothing, a waiting
  one one event per change of reason.

:class:`PendingReasons` is the part of runtime/task_submitter.py's TaskSubmitter
that does this; the functions below it are pure.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .. import ids
from .task_events import waiting_info

if TYPE_CHECKING:
    from ..protocol.connection import Connection
    from .task_spec import TaskSpec
    from .task_submitter import TaskSubmitter

#: tasks of one queue given a reason per second at most (the front of the queue first)
MAX_REASON_EVENTS = 5_000
#: arguments named in a reason at most
MAX_ARGUMENTS = 3


class PendingReasons:
    """Mixed into the TaskSubmitter: reasons in, reasons onto the task events."""

    def lease_pending(self: TaskSubmitter, node: Connection, request_id: int, reason: str):
        """Loop thread: ``node`` says why our request still waits there (it changed)."""
        for queue in self._queues.values():
            if queue.requests.get(request_id) is node:
                queue.reasons[request_id] = reason
                return

    def record_reasons(self: TaskSubmitter) -> None:
        """Loop thread, before the task events go out: each queued task's reason."""
        record = self.worker.task_events.record

        def told(spec: TaskSpec, info: dict) -> None:
            record(spec.task_id, spec.attempts, "PENDING_NODE_ASSIGNMENT", info)

        record_queue_reasons(self._queues.values(), told)

    def _waiting_info(self: TaskSubmitter, spec: TaskSpec) -> dict:
        """The PENDING_ARGS_AVAIL event's info, with why: the arguments not there yet
        (those of ours whose task is unfinished, and all borrowed ones; else all)."""
        me, args = self.worker.address, [(o, owner) for _, o, owner in spec.placeholders]
        waiting = [(o, owner) for o, owner in args if owner != me or self._maker(o)] or args
        reason = arguments_reason(waiting, me, os.getpid(), self._maker)
        return {**waiting_info(spec, self._info(spec)), "pending_reason": reason}

    def _maker(self: TaskSubmitter, object_id: bytes) -> tuple | None:
        """(name, state, node hex) of the unfinished task of ours making ``object_id``."""
        spec = self._in_flight.get(task_of(object_id))
        if spec is None:
            return None
        lease = self._running.get(spec.task_id)
        if lease is None:
            return spec.name, "not started yet", ""
        return spec.name, "running", lease.where["node_id"]


def queue_reason(reasons: dict[int, str]) -> str:
    """The reason of a queue's oldest waiting request ("" when none was told)."""
    return reasons[min(reasons)] if reasons else ""


def spilled(node_hex: str) -> str:
    """A request sent on to another node, before that node says more."""
    return (
        f"Spilled to node {node_hex[:12]}: its node had no room and the cluster view shows "
        "room there; waiting for that node's answer."
    )


def record_queue_reasons(queues: Iterable, record: Callable) -> None:
    """Give each queued task its queue's reason, once per reason (``record(spec, info)``)."""
    for queue in queues:
        reason = queue_reason(queue.reasons) if queue.tasks else ""
        if not reason:
            continue
        for spec in itertools.islice(queue.tasks, MAX_REASON_EVENTS):
            told = spec.pending_reason
            if told is None or told[0] != spec.attempts or told[1] != reason:
                spec.pending_reason = (spec.attempts, reason)
                record(spec, {"pending_reason": reason})


def arguments_reason(waiting: list, me: str, pid: int, makers: Callable) -> str:
    """Why a task waits for its arguments: ``waiting`` is ``[(object_id, owner), ...]``;
    ``makers(object_id)`` gives ``(task name, state, node hex)`` of the task of this
    process making it, or None (not ours, or done)."""
    parts = []
    for object_id, owner in waiting[:MAX_ARGUMENTS]:
        text = f"object {object_id.hex()[:16]}"
        if owner == me:
            made = makers(object_id)
            text += f" (owned by its owner, pid {pid}"
            if made is not None:
                name, state, node = made
                text += f"; made by {name}, {state}" + (f" on node {node[:12]}" if node else "")
            parts.append(text + ")")
        else:
            parts.append(f"{text} (owned by the process at {owner})")
    more = len(waiting) - MAX_ARGUMENTS
    listed = "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    return f"Waiting for {len(waiting)} argument(s): {listed}."


def task_of(object_id: bytes) -> bytes:
    """The id of the task that makes ``object_id``."""
    return object_id[: ids.TASK_ID_SIZE]
