"""The caller's side of actor calls: push them to the actor's worker, in order (loop thread).

Each actor this process calls has a queue of calls in submission order. A call
is pushed once its ObjectRef arguments have values *and* every earlier call
has been pushed, so one caller's calls reach the actor in the order they were
made; the connection keeps that order and a sync actor runs them one by one.
An actor created with ``allow_out_of_order_execution=True`` drops that rule, as
in Ray: each call is pushed as soon as its arguments have values, so one whose
argument is late does not hold up later ones (``__ray_terminate__`` still waits
for every call before it).

A call with no ObjectRef arguments, to an actor this process is connected to
and has nothing queued or in flight for, is pushed at once by the calling
thread (``_push_now``): the synchronous ``get(actor.m.remote())`` pattern then
skips the hand-off to the loop thread. One lock (``_lock``) guards the actor
table against that thread; every loop-thread entry point takes it.

Where the actor lives is asked of the node (``GetActorInfo``). When the
connection to the actor breaks, the caller asks again, naming the address that
failed: the node answers once the actor is alive elsewhere (restarted) or dead.
Calls that were in flight are then retried (``max_task_retries``) or fail with
ActorUnavailableError (it restarted) or ActorDiedError (it is dead).
"""

from __future__ import annotations

import collections
import pickle
import threading
from functools import partial, wraps
from typing import TYPE_CHECKING

from ..exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    RaySystemError,
    TaskCancelledError,
)
from ..ids import ACTOR_ID_SIZE
from ..protocol.connection import Connection, ConnectionLost
from ..protocol.messages import ActorState, CancelTask, GetActorInfo, PushActorTask
from . import argument_resolver
from .actor_executor import TERMINATE
from .inbox import Inbox
from .task_events import INFO_FIELDS, failure, task_info, waiting_info
from .task_outcomes import release_arguments, report_unhandled_error, store_error
from .task_spec import TaskSpec
from .task_submitter import NODE_GONE

if TYPE_CHECKING:
    from .core_worker import CoreWorker


def _locked(method):
    """Run a loop-thread entry point under the submitter's lock (see ``_push_now``)."""

    @wraps(method)
    def locked(self, *args):
        with self._lock:
            return method(self, *args)

    return locked


class _Actor:
    """What this process knows about one actor it calls."""

    __slots__ = (
        "actor_id",
        "address",
        "conn",
        "queue",
        "in_flight",
        "dead",
        "locating",
        "out_of_order",
    )

    def __init__(self, actor_id: bytes, out_of_order: bool = False):
        self.actor_id = actor_id
        self.address = ""
        self.conn: Connection | None = None
        self.queue: collections.deque[TaskSpec] = collections.deque()  #: not pushed yet
        self.in_flight: dict[bytes, TaskSpec] = {}  #: pushed, no reply yet (push order)
        self.dead: BaseException | None = None  #: the error every call gets once it is dead
        self.locating = False
        self.out_of_order = out_of_order  #: allow_out_of_order_execution: push once ready


class ActorSubmitter:
    def __init__(self, worker: CoreWorker):
        self.worker = worker
        self._actors: dict[bytes, _Actor] = {}
        self._inbox = Inbox(worker, self._accept)
        self._cancelled: set[bytes] = set()
        #: calls submitted and not finished, per actor (read by callers for max_pending_calls)
        self._pending: collections.Counter = collections.Counter()
        self._pending_lock = threading.Lock()
        self._lock = threading.RLock()  #: the actor table, against _push_now's thread
        self._unaccepted = 0  #: calls in the inbox: nothing may be pushed before them

    # --- entry (any thread) ----------------------------------------------------------------

    def submit(self, spec: TaskSpec) -> None:
        with self._pending_lock:
            self._pending[spec.actor_id] += 1
        if spec.placeholders or not self._push_now(spec):
            with self._lock:
                self._unaccepted += 1
            self._inbox.put(spec)

    def _push_now(self, spec: TaskSpec) -> bool:
        """Push from the calling thread if nothing of this actor must go first."""
        with self._lock:
            actor = self._actors.get(spec.actor_id)
            if (
                self._unaccepted
                or actor is None
                or actor.conn is None
                or actor.conn.closed
                or actor.locating
                or actor.dead is not None
                or actor.queue
                or actor.in_flight
            ):
                return False
            spec.ready = True  # no ref arguments: nothing to resolve
            self._push(actor, spec, from_caller=True)
            return True

    @_locked
    def _accept(self, spec: TaskSpec) -> None:
        self._unaccepted -= 1
        actor = self._actors.get(spec.actor_id)
        if actor is None:
            actor = self._actors[spec.actor_id] = _Actor(spec.actor_id, spec.out_of_order)
        actor.queue.append(spec)
        if spec.placeholders:
            info = task_info(spec, "ACTOR_TASK", self.worker.current_job_id())
            self.worker.task_events.record(
                spec.task_id, 0, "PENDING_ARGS_AVAIL", waiting_info(spec, info)
            )
        argument_resolver.resolve(
            self.worker, spec, partial(self._ready, actor), partial(self._failed, actor)
        )

    @_locked
    def _ready(self, actor: _Actor, spec: TaskSpec) -> None:
        spec.ready = True
        self._pump(actor)

    @_locked
    def _failed(self, actor: _Actor, spec: TaskSpec, error: BaseException) -> None:
        if spec in actor.queue:
            actor.queue.remove(spec)
            self._fail(spec, error)
        self._pump(actor)

    # --- pushing --------------------------------------------------------------------------------

    def _pump(self, actor: _Actor) -> None:
        if actor.dead is not None:
            while actor.queue:
                self._fail(actor.queue.popleft(), actor.dead)
            return
        if actor.conn is not None and actor.conn.closed:  # it died while we were idle
            actor.conn = None
            if actor.queue:
                self._locate(actor, stale=actor.address)
            return
        if actor.conn is None:
            if actor.queue:
                self._locate(actor)
            return
        if actor.out_of_order:
            self._push_ready(actor)
            return
        while actor.queue and actor.queue[0].ready:
            self._push(actor, actor.queue.popleft())

    def _push_ready(self, actor: _Actor) -> None:
        """Out of order: push every call whose arguments are ready, wherever it is in the
        queue; ``__ray_terminate__`` goes only once every call before it has gone."""
        waiting: collections.deque[TaskSpec] = collections.deque()
        queue = actor.queue
        while queue:
            spec = queue.popleft()
            if spec.method == TERMINATE and waiting:  # it and all after it wait
                waiting.append(spec)
                waiting.extend(queue)
                queue.clear()
                break
            if spec.ready:
                self._push(actor, spec)
            else:
                waiting.append(spec)
        actor.queue = waiting

    def _push(self, actor: _Actor, spec: TaskSpec, from_caller: bool = False) -> None:
        if spec.task_id in self._cancelled:
            self._cancelled.discard(spec.task_id)
            self._fail(spec, TaskCancelledError(spec.task_id.hex()))
            return
        refs = [*spec.nested_refs, *spec.resolved_refs]
        self.worker.grant(refs, actor.address)
        msg = PushActorTask(
            spec.task_id,
            spec.actor_id,
            spec.method,
            spec.name,
            spec.args_blob,
            spec.resolved,
            refs,
            spec.num_returns,
            self.worker.address,
            spec.concurrency_group,
            self.worker.generator_wire(spec),
        )
        actor.in_flight[spec.task_id] = spec
        # (no SUBMITTED_TO_WORKER event: an actor call is told of once it ends, and its
        # worker says when it runs; two events a call instead of three)
        spec.told = task_info(spec, "ACTOR_TASK", self.worker.current_job_id())
        on_reply = partial(self._on_reply, actor, actor.conn, spec)
        actor.conn.request_then(msg, on_reply, threadsafe=from_caller)

    @_locked
    def _on_reply(self, actor: _Actor, conn: Connection, spec: TaskSpec, fut) -> None:
        if fut.cancelled():
            return
        error = fut.exception()
        if self.worker.stopping:
            return
        if isinstance(error, ConnectionLost):
            if actor.conn is conn:  # the first call to notice: find out what became of it
                actor.conn = None
                self._locate(actor, stale=actor.address)
            return
        actor.in_flight.pop(spec.task_id, None)
        if error is not None:
            self._fail(spec, RaySystemError(f"the actor's worker refused the call: {error}"))
            return
        reply = fut.result()
        if spec.task_id in self._cancelled:
            self._cancelled.discard(spec.task_id)
            if not reply.app_error:  # as in Ray: cancelled means cancelled, even if it ran
                self._fail(spec, TaskCancelledError(spec.task_id.hex()))
                return
        if reply.app_error and spec.num_returns == 0:
            report_unhandled_error(reply.returns[0][1])
        if reply.app_error:
            info = {**dict(zip(INFO_FIELDS, spec.told)), **failure(None)}
            self.worker.task_events.record(spec.task_id, 0, "FAILED", info)
        else:
            self.worker.task_events.record(spec.task_id, 0, "FINISHED", spec.told)
        self._done(spec)  # before the results: storing them may wake the caller's thread
        self.worker.store_returns(spec.return_ids, reply.returns, actor.address)

    # --- where the actor is -------------------------------------------------------------------

    def _locate(self, actor: _Actor, stale: str = "") -> None:
        """Ask the node where the actor is, then connect; ``locating`` until connected."""
        if actor.locating:
            return
        actor.locating = True
        fut = self.worker.node.request(GetActorInfo(actor.actor_id, stale))
        fut.add_done_callback(partial(self._located, actor, stale))

    @_locked
    def _located(self, actor: _Actor, stale: str, fut) -> None:
        if fut.cancelled():
            return
        error = fut.exception()
        if self.worker.stopping:
            return
        if isinstance(error, ConnectionLost):
            actor.dead = RaySystemError(NODE_GONE)
        elif error is not None:
            actor.dead = ActorDiedError(actor.actor_id.hex(), f"The actor is unknown: {error}")
        else:
            info = fut.result()
            if info.state == ActorState.DEAD:
                actor.dead = death_error(info)
        if actor.dead is not None:
            actor.locating = False
            self._fail_everything(actor, actor.dead)
            if self._actors.get(actor.actor_id) is actor:
                del self._actors[actor.actor_id]  # a later call asks the node again
            return
        if stale:  # we lost the connection to it: what was in flight there is gone
            self._requeue_in_flight(actor, info.restart_cause)
        actor.address = info.address
        conn = self.worker.cached_peer(info.address)
        if conn is not None:
            self._connected(actor, conn)
        else:
            self.worker.loop.create_task(self._connect(actor, info.address))

    async def _connect(self, actor: _Actor, address: str) -> None:
        try:
            conn = await self.worker.peer(address)
        except OSError:  # it died before we reached it: ask again
            with self._lock:
                actor.locating = False
                self._locate(actor, stale=address)
            return
        self._connected(actor, conn)

    @_locked
    def _connected(self, actor: _Actor, conn: Connection) -> None:
        actor.locating = False
        actor.conn = conn
        self._pump(actor)

    def _requeue_in_flight(self, actor: _Actor, cause: str = "") -> None:
        """The actor restarted: retry the calls it was running, or fail them (``cause``:
        why its worker died, as its node saw it)."""
        why = f"\nWhy its worker died: {cause}" if cause else ""
        retry = []
        for spec in actor.in_flight.values():
            if spec.max_retries == -1 or spec.attempts < spec.max_retries:
                spec.attempts += 1
                retry.append(spec)
            else:
                self._fail(
                    spec,
                    ActorUnavailableError(
                        actor.actor_id.hex(),
                        f"The actor {actor.actor_id.hex()} is unavailable: its worker died while "
                        f"running {spec.name} and the actor restarted. The task may or may not "
                        "have been executed on the actor. Set max_task_retries to retry it." + why,
                    ),
                )
        actor.in_flight.clear()
        actor.queue.extendleft(reversed(retry))

    # --- finishing --------------------------------------------------------------------------------

    def _fail(self, spec: TaskSpec, error: BaseException) -> None:
        told = spec.told or task_info(spec, "ACTOR_TASK", self.worker.current_job_id())
        info = {**dict(zip(INFO_FIELDS, told)), **failure(error)}
        self.worker.task_events.record(spec.task_id, 0, "FAILED", info)
        store_error(self.worker, spec, error)
        self._done(spec)

    def _fail_everything(self, actor: _Actor, error: BaseException) -> None:
        """The actor is gone for good: every call in flight or queued gets ``error``."""
        actor.dead = error
        for spec in list(actor.in_flight.values()):
            self._fail(spec, error)
        actor.in_flight.clear()
        self._pump(actor)

    def _done(self, spec: TaskSpec) -> None:
        release_arguments(self.worker, spec)
        with self._pending_lock:
            self._pending[spec.actor_id] -= 1
            if not self._pending[spec.actor_id]:
                del self._pending[spec.actor_id]

    def pending(self, actor_id: bytes) -> int:
        """Calls of this process to the actor that have no result yet (any thread)."""
        return self._pending.get(actor_id, 0)

    @_locked
    def cancel(self, task_id: bytes, recursive: bool) -> Connection | None:
        """Cancel a call of this process (loop thread): drop it if queued, else tell the
        actor (``recursive``: it cancels what the call submitted too). Returns the
        connection the cancel went on, if it was sent."""
        self._inbox.drain()  # (submitted, not looked at yet)
        actor = self._actors.get(task_id[-ACTOR_ID_SIZE:])
        if actor is None:
            return None
        for spec in actor.queue:
            if spec.task_id == task_id:
                actor.queue.remove(spec)
                self._fail(spec, TaskCancelledError(task_id.hex()))
                return None
        if task_id in actor.in_flight and actor.conn is not None and task_id not in self._cancelled:
            self._cancelled.add(task_id)
            actor.conn.send(CancelTask(task_id, False, recursive))
            return actor.conn
        return None

    @_locked
    def children_of(self, task_id: bytes) -> list[bytes]:
        """The unfinished calls that ``task_id`` made from this process."""
        self._inbox.drain()  # (submitted, not looked at yet)
        return [
            spec.task_id
            for actor in self._actors.values()
            for spec in (*actor.queue, *actor.in_flight.values())
            if spec.parent == task_id
        ]

    def is_actor_call(self, task_id: bytes) -> bool:
        """Whether the task id names a call this process made to an actor."""
        return task_id[-ACTOR_ID_SIZE:] in self._actors

    def has_work(self) -> bool:
        return bool(self._inbox) or any(a.queue or a.in_flight for a in self._actors.values())

    @_locked
    def fail_all(self, error: BaseException) -> None:
        for actor in self._actors.values():
            self._fail_everything(actor, error)


def death_error(info) -> ActorDiedError:
    """The error calls to a dead actor raise, from the node's ActorInfo."""
    actor_hex = info.actor_id.hex()
    if info.death_error is not None:
        try:
            cause = str(pickle.loads(info.death_error))
        except Exception as e:
            cause = f"(the error could not be read: {e})"
        return ActorDiedError(
            actor_hex,
            f"The actor died because of an error raised in its creation task, {cause}",
            actor_init_failed=True,
        )
    return ActorDiedError(actor_hex, info.death_cause or "The actor died.")
