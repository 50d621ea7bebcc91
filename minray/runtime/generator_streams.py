"""The owner's side of generator tasks: items as they arrive, handed to the caller in order.

A generator task (``num_returns="streaming"`` or ``"dynamic"``) has one ordinary
result, its *completion* ref (object index 1): None once the task ended, or its
error. Every value it yields travels on its own, before the task's reply and on
the same connection, as a ``GeneratorItem`` (index ``i`` is object index
``i + 2``); the owner keeps an ObjectRef to each until the caller takes it.

``GeneratorStreams`` is a mixin of the CoreWorker: it opens a stream per task
before the task is submitted (so no item can arrive first), routes
``GeneratorItem`` to it (loop thread), and answers those reports at once or, with
back-pressure, once the caller has taken enough (see generator_state.py). The
stream learns that the task ended from its completion ref arriving, whatever
path it came by (reply, failure, cancel, retries used up). A retried task skips
the items its owner already has (``PushTask.generator``).

For ``"dynamic"`` the caller's ref (index 0 of the task) gets, once the task
ended, a DynamicObjectRefGenerator of the item refs (plus the completion ref if
the generator raised), or the task's error if it never ran to an end.
"""

from __future__ import annotations

import functools
import pickle
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from .. import ids, serialization
from ..exceptions import RayTaskError
from ..object_ref import ObjectRef
from ..object_ref_generator import DynamicObjectRefGenerator
from ..protocol.connection import Connection
from ..protocol.messages import FreeObjects, GeneratorAck, GeneratorItem, ValueKind
from .generator_state import FIRST_ITEM_INDEX, Next, StreamState
from .memory_store import StoredValue

if TYPE_CHECKING:
    from .core_worker import CoreWorker
    from .task_spec import TaskSpec


class GeneratorCall(NamedTuple):
    """How a generator task was asked for."""

    dynamic: bool  #: num_returns="dynamic": one ref to all the items, once the task ended
    backpressure: int = -1  #: most items left untaken before the worker waits (-1: no limit)


class OwnedStream:
    """One generator task's items at its owner: any thread reads, the loop thread adds."""

    def __init__(self, worker: CoreWorker, task_id: bytes, completed: ObjectRef, dynamic: bool,
                 state: StreamState):  # fmt: skip
        self.worker = worker
        self.task_id = task_id
        self.completed = completed  #: the completion ref: None, or the task's error
        self.state = state
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._listeners: list[Callable[[], None]] = []  #: called once when next() may go on
        self.dynamic_ref: ObjectRef | None = None  #: "dynamic": the caller's ref
        if dynamic:
            object_id = ids.object_id_for(task_id, 0)
            with worker._lock:
                worker.refs.add_owned(object_id)
            self.dynamic_ref = ObjectRef(object_id, worker.address)

    # --- loop thread ------------------------------------------------------------------------

    def arrive(self, msg: GeneratorItem, grantor: str) -> bool:
        """Store a reported item; False if refused (already here, or nobody listens)."""
        object_id = ids.object_id_for(self.task_id, msg.index + FIRST_ITEM_INDEX)
        entry = [msg.kind, msg.payload, msg.refs]
        with self.lock:
            fresh = not self.state.closed and msg.index >= self.state.taken
            fresh = fresh and msg.index not in self.state.waiting
        if not fresh:
            _drop_item(self.worker, object_id, entry, grantor)
            return False
        with self.worker._lock:
            self.worker.refs.add_owned(object_id)
        ref = ObjectRef(object_id, self.worker.address)
        self.worker.store_returns([object_id], [entry], grantor)
        with self.lock:
            accepted = self.state.arrive(msg.index, ref)
        if accepted:
            self._changed()
        return accepted

    def on_completed(self, object_id: bytes) -> None:
        """The completion ref has its value: the task ended (memory-store callback)."""
        value = self.worker.store.get(object_id)
        failed = value is None or value.kind == ValueKind.ERROR
        with self.lock:
            self.state.end(failed)
            if self.dynamic_ref is not None:
                self._fill_dynamic(value)
        self.worker.forget_stream(self.task_id)
        self._changed()

    def _fill_dynamic(self, completed: StoredValue | None) -> None:
        """Give the caller's ref of a "dynamic" task its value (under the lock)."""
        refs = []
        while self.state.peek() is Next.ITEM:
            refs.append(self.state.take()[1])
        if completed is not None and completed.kind == ValueKind.ERROR:
            if not isinstance(_unpickled(completed.payload), RayTaskError):
                self._store_dynamic(completed)  # it never ran to an end: get() raises
                return
            refs.append(self.completed)  # the generator raised: its error is the last item
        s = serialization.serialize(DynamicObjectRefGenerator(refs))
        with self.worker._lock:
            self.worker.refs.set_contains(self.dynamic_ref._id, s.refs)
        self._store_dynamic(StoredValue(ValueKind.INLINE, serialization.to_inline(s), s.refs))

    def _store_dynamic(self, value: StoredValue) -> None:
        self.worker.store.put(self.dynamic_ref._id, value)

    def answer(self, msg: GeneratorItem) -> GeneratorAck | object:
        """The answer to an item's report: now, or a future answered once enough is taken."""
        with self.lock:
            if self.state.answer_now(msg.index):
                return GeneratorAck(-1 if self.state.closed else self.state.taken)
            fut = self.worker.loop.create_future()
            self.state.hold(msg.index, fut)
            return fut

    # --- any thread -------------------------------------------------------------------------

    def take(self) -> tuple[Next, ObjectRef | None]:
        """What ``next(gen)`` gets now (WAIT: nothing yet); releases held answers."""
        with self.lock:
            what, ref = self.state.take()
            if what is Next.ERROR:
                ref = self.completed
            released = self.state.release() if what is Next.ITEM else []
            consumed = self.state.taken
        self._answer_held(released, consumed)
        return what, ref

    def peek(self) -> Next:
        with self.lock:
            return self.state.peek()

    def wait(self, timeout: float | None) -> bool:
        """Block until ``next`` would not wait, or for ``timeout`` s; True if it would not."""
        with self.lock:
            return self.changed.wait_for(lambda: self.state.peek() is not Next.WAIT, timeout)

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once ``next`` would not wait: now, or on the loop thread."""
        with self.lock:
            if self.state.peek() is Next.WAIT:
                self._listeners.append(callback)
                return
        callback()

    def close(self) -> None:
        """The caller dropped its generator: free the items it never took, stop holding."""
        with self.lock:
            dropped = self.state.close()
            released = self.state.release()
        del dropped  # (their ObjectRefs go: the objects are freed)
        self._answer_held(released, -1)

    def _answer_held(self, answers: list, consumed: int) -> None:
        for fut in answers:
            self.worker.call_soon(_resolve, fut, GeneratorAck(consumed))

    def _changed(self) -> None:
        with self.lock:
            listeners, self._listeners = self._listeners, []
            self.changed.notify_all()
        for listener in listeners:
            listener()


def _resolve(fut, ack: GeneratorAck) -> None:
    if not fut.done():
        fut.set_result(ack)


def _unpickled(payload: bytes) -> object:
    try:
        return pickle.loads(payload)
    except Exception:
        return None


def _drop_item(worker: CoreWorker, object_id: bytes, entry: list, grantor: str) -> None:
    """An item nobody will take: give back the refs inside it and free its segment (unless
    the object is already here from an earlier run of the task)."""
    kind, payload, refs = entry
    worker.take_grants(refs, grantor)
    worker.release_holds(refs)
    if kind == ValueKind.SHARED and object_id not in worker.refs:
        worker.nodes.send(payload[2], FreeObjects([object_id]))


class GeneratorStreams:
    """The CoreWorker's open streams, by task id (a mixin)."""

    @functools.cached_property
    def _streams(self) -> dict[bytes, OwnedStream]:
        return {}

    def open_stream(self: CoreWorker, task_id: bytes, completed: ObjectRef, call: GeneratorCall
                    ) -> OwnedStream:  # fmt: skip
        """Before a generator task is submitted: where its items will go."""
        state = StreamState(-1 if call.dynamic else call.backpressure)
        stream = OwnedStream(self, task_id, completed, call.dynamic, state)
        self._streams[task_id] = stream
        self.store.add_callback(completed._id, stream.on_completed)
        return stream

    def forget_stream(self, task_id: bytes) -> None:
        self._streams.pop(task_id, None)

    def generator_wire(self, spec: TaskSpec) -> list | None:
        """PushTask.generator for a run of a task: None (not a generator), or
        [back-pressure, items the owner already has from earlier runs]."""
        if spec.generator is None:
            return None
        stream = self._streams.get(spec.task_id)
        if stream is None:
            return [spec.generator.backpressure, 0]
        with stream.lock:
            return [spec.generator.backpressure, stream.state.taken + len(stream.state.waiting)]

    def handle_GeneratorItem(self: CoreWorker, conn: Connection, msg: GeneratorItem):
        stream = self._streams.get(msg.task_id)
        grantor = conn.info.get("peer", "")
        if stream is None:  # the task ended or its owner stopped listening
            _drop_item(self, ids.object_id_for(msg.task_id, msg.index + FIRST_ITEM_INDEX),
                       [msg.kind, msg.payload, msg.refs], grantor)  # fmt: skip
            return GeneratorAck(-1)
        stream.arrive(msg, grantor)
        return stream.answer(msg)
