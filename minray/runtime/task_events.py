"""Task events: each process records the state changes of the tasks it owns or runs, and
sends them to the head in batches (for ``list_tasks``, ``minray list tasks``).

The owner of a task records ``PENDING_ARGS_AVAIL`` (waiting for its arguments),
``PENDING_NODE_ASSIGNMENT`` (waiting for a lease), ``SUBMITTED_TO_WORKER`` (pushed,
with the node and worker), ``FINISHED`` or ``FAILED`` (with the error); the worker
that runs it records ``RUNNING``, and ``FAILED`` with the exception and its
traceback when the task raises (bounded: MAX_ERROR_CHARS). An event is a tuple
``(task_id, attempt, state, time, info)``; ``info`` carries the task's name, kind,
job, resources and argument ids on its first event, the place on
SUBMITTED_TO_WORKER, the error on FAILED, else None.

Recording is an append to a bounded deque (any thread). Once a second the loop
thread sends what gathered as one ``TaskEvents`` message to the node, which
passes it to the head (head/task_table.py). When the buffer is full, new events
are dropped and counted; the count travels with the next batch, so what is
missing is shown, never hidden. ``MINRAY_TASK_EVENTS=0`` turns recording off.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

from ..protocol.messages import TaskEvents

#: seconds between batches
FLUSH_INTERVAL_S = 1.0
#: events a process keeps while waiting to send them (Config.task_events_buffer_size)
CAPACITY = 100_000
#: events per message
BATCH = 10_000


class TaskEventBuffer:
    """This process's unsent task events."""

    def __init__(self, enabled: bool = True, capacity: int = CAPACITY):
        self.enabled = enabled
        self.capacity = capacity
        self.dropped = 0  #: events dropped since the last batch
        #: where this process runs (node, worker id, pid): sent once per batch, not per event
        self.source: dict | None = None
        #: called on the loop thread before each batch (the owner adds pending reasons)
        self.before_flush: list[Callable[[], None]] = []
        self._events: collections.deque = collections.deque()
        self._handle: asyncio.TimerHandle | None = None

    def has_room(self) -> bool:
        """Whether ``record`` would keep an event now (on, and the buffer not full)."""
        return self.enabled and len(self._events) < self.capacity

    def drop(self) -> None:
        """An event not recorded because there was no room (counted, as ``record`` does)."""
        if self.enabled:
            self.dropped += 1

    def record(self, task_id: bytes, attempt: int, state: str, info: dict | None = None) -> None:
        """Any thread: one state change of a task, now."""
        if not self.enabled:
            return
        if len(self._events) >= self.capacity:
            self.dropped += 1
            return
        self._events.append((task_id, attempt, state, time.time(), info))

    def start(self, loop: asyncio.AbstractEventLoop, send: Callable[[TaskEvents], None]) -> None:
        """Send a batch every FLUSH_INTERVAL_S on ``loop`` (its thread)."""
        if not self.enabled:
            return

        def tick() -> None:
            for hook in self.before_flush:
                hook()
            self.flush(send)
            self._handle = loop.call_later(FLUSH_INTERVAL_S, tick)

        self._handle = loop.call_later(FLUSH_INTERVAL_S, tick)

    def flush(self, send: Callable[[TaskEvents], None]) -> None:
        """Loop thread: send what gathered (in batches of at most BATCH events)."""
        events = self._events
        while events or self.dropped:
            batch = []
            while events and len(batch) < BATCH:
                batch.append(events.popleft())
            dropped, self.dropped = self.dropped, 0
            send(TaskEvents(batch, dropped, self.source))

    def stop(self, send: Callable[[TaskEvents], None] | None = None) -> None:
        """Stop the timer; send what is left with ``send``, if given."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if send is not None:
            self.flush(send)


#: the fields of a task's first event's info, in order (sent as a tuple: less to encode);
#: ``args``: the ids of the objects it takes (what the dashboard's task graph draws)
#: ``attempt_reason``: why this attempt runs ("", "RETRY", "RECONSTRUCTION"; TaskSpec's)
INFO_FIELDS = (
    "name", "type", "job_id", "actor_id", "required_resources", "args", "attempt_reason",
)  # fmt: skip
#: argument ids a task's events carry at most (the graph draws no more edges into it)
MAX_ARG_IDS = 32


def task_info(spec, kind: str, job_id: bytes) -> tuple:
    """What the first event of a task (or a new attempt) tells the head about it:
    INFO_FIELDS' values (kind: NORMAL_TASK, ACTOR_CREATION_TASK or ACTOR_TASK)."""
    actor_id = spec.actor_id or (spec.actor["actor_id"] if spec.actor is not None else b"")
    return (
        spec.name, kind, job_id, actor_id, spec.resources, argument_ids(spec),
        spec.attempt_reason,
    )  # fmt: skip


def argument_ids(spec) -> list | tuple:
    """The ids of the objects a task takes, top-level and nested (the first MAX_ARG_IDS;
    ids only, never values). The shared empty tuple for a task that takes none."""
    if not spec.placeholders and not spec.nested_refs:
        return ()
    found = [o for _, o, _ in spec.placeholders[:MAX_ARG_IDS]]
    found += [o for o, _ in spec.nested_refs[: MAX_ARG_IDS - len(found)]]
    return found


def waiting_info(spec, info: tuple) -> dict:
    """A PENDING_ARGS_AVAIL event's info: the task's, and the objects it waits for (the
    first ten; an object's id starts with the id of the task that makes it)."""
    return {
        **dict(zip(INFO_FIELDS, info)),
        "waiting_for": [o for _, o, _ in spec.placeholders[:10]],
    }


#: Ray's error types for the errors a task fails with
_ERROR_TYPES = {
    "TaskCancelledError": "TASK_CANCELLED",
    "WorkerCrashedError": "WORKER_DIED",
    "ActorDiedError": "ACTOR_DIED",
    "ActorUnavailableError": "ACTOR_UNAVAILABLE",
    "ObjectLostError": "OBJECT_LOST",
    "OwnerDiedError": "OWNER_DIED",
    "TaskUnschedulableError": "TASK_UNSCHEDULABLE_ERROR",
    "RuntimeEnvSetupError": "RUNTIME_ENV_SETUP_FAILED",
}


def failure(error: BaseException | None) -> dict:
    """The FAILED event's info: Ray's error type and the message (None: the task raised)."""
    if error is None:
        return {"error_type": "TASK_EXECUTION_EXCEPTION"}
    kind = type(error).__name__
    return {"error_type": _ERROR_TYPES.get(kind, kind), "error_message": str(error)[:1000]}


#: characters of a task's error text (its traceback) its FAILED event carries at most
MAX_ERROR_CHARS = 4000


def raised(error) -> dict:
    """The FAILED event's info from the worker whose task raised: the exception's class,
    and ``error`` (the RayTaskError its caller gets) as plain text, traceback included.
    Past MAX_ERROR_CHARS the middle is left out: the start says where, the end what."""
    kind = type(error.cause).__name__
    text = f"{error.proctitle} (pid={error.pid}, ip={error.ip})\n{error.traceback_str}"
    return {
        "error_type": _ERROR_TYPES.get(kind, "TASK_EXECUTION_EXCEPTION"),
        "exception_type": kind,
        "error_message": bounded(text.rstrip(), MAX_ERROR_CHARS),
    }


def bounded(text: str, limit: int) -> str:
    """``text``, or its first quarter and last part with a note of what was left out."""
    if len(text) <= limit:
        return text
    head = limit // 4
    note = f"\n... ({len(text) - limit} characters left out) ...\n"
    return text[:head] + note + text[len(text) - (limit - head) :]
