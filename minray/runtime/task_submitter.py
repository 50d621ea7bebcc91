"""The owner's side of a task: resolve its arguments, lease a worker, push, collect.

Everything here runs on the loop thread. Tasks with the same resource shape
share a queue (a *scheduling key*). For each queue the submitter keeps up to
:data:`MAX_LEASE_REQUESTS` lease requests at the node; a granted lease runs one
task after another while the queue has work and goes back to the node when it
runs dry. A worker that dies mid-task fails the push; the task is retried up to
``max_retries`` times, then its results become ``WorkerCrashedError``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import pickle
from functools import partial
from typing import TYPE_CHECKING

from .. import ids
from ..exceptions import (
    OutOfMemoryError,
    RaySystemError,
    TaskCancelledError,
    TaskUnschedulableError,
    WorkerCrashedError,
)
from ..protocol.connection import Connection, ConnectionLost, RemoteError
from ..protocol.messages import (
    TASK_NOT_STARTED,
    ActorCreationFailed,
    CancelLeaseRequest,
    CancelTask,
    LeaseSpillback,
    PushTask,
    RequestLease,
    ReturnLease,
    ValueKind,
)
from . import argument_resolver, pending_reasons
from .inbox import Inbox
from .lost_objects import ARGUMENT_LOST
from .task_events import failure, task_info
from .task_leases import (
    LEASE_LINGER_S,
    MAX_LEASE_REQUESTS,
    Lease,
    TaskQueue,
)
from .task_outcomes import pickled_error, release_arguments, report_unhandled_error, store_error
from .task_spec import TaskSpec

if TYPE_CHECKING:
    from .core_worker import CoreWorker

logger = logging.getLogger("minray")

NODE_GONE = "the minray node process exited; call minray.shutdown() and minray.init() again"


class TaskSubmitter(pending_reasons.PendingReasons):
    def __init__(self, worker: CoreWorker):
        self.worker = worker
        self._queues: dict[tuple, TaskQueue] = {}
        self._request_ids = itertools.count(1)
        self._inbox = Inbox(worker, self._resolve)
        self._in_flight: dict[bytes, TaskSpec] = {}
        #: (node, lease id) -> why: leases whose workers the node's memory monitor kills
        self._oom_kills: dict[tuple, str] = {}
        self._running: dict[bytes, Lease] = {}  #: pushed tasks and the lease running them
        self.retried = 0  #: tasks run again after a failure (for tests and the chaos tools)
        self.handed_back = 0  #: pipelined tasks that came back unstarted (for tests)
        self.connecting = 0  #: granted leases whose worker we are connecting to
        worker.task_events.before_flush.append(self.record_reasons)

    # --- entry (any thread) ----------------------------------------------------------------

    def submit(self, spec: TaskSpec) -> None:
        self._inbox.put(spec)

    # --- arguments ---------------------------------------------------------------------------

    def _resolve(self, spec: TaskSpec) -> None:
        self._in_flight[spec.task_id] = spec
        if not spec.placeholders:  # (most tasks: nothing to wait for)
            self._enqueue(spec)
            return
        self._record(spec, "PENDING_ARGS_AVAIL", self._waiting_info(spec))
        argument_resolver.resolve(self.worker, spec, self._enqueue, self._fail)

    def _resolve_again(self, spec: TaskSpec) -> None:
        """An argument was lost after the task was pushed: wait for it (rebuilt) again."""
        self._record(spec, "PENDING_ARGS_AVAIL", self._waiting_info(spec))
        argument_resolver.resolve(self.worker, spec, self._enqueue, self._fail)

    def _record(self, spec: TaskSpec, state: str, info: dict | None = None) -> None:
        self.worker.task_events.record(spec.task_id, spec.attempts, state, info)

    @staticmethod
    def _info(spec: TaskSpec) -> dict:
        kind = "ACTOR_CREATION_TASK" if spec.actor is not None else "NORMAL_TASK"
        return task_info(spec, kind, spec.task_id[-ids.JOB_ID_SIZE :])

    # --- queues and leases ---------------------------------------------------------------------

    def node_died(self, node_id: bytes) -> None:
        """Leases granted by a node declared dead: close their workers' connections, so
        the tasks on them fail over (retried elsewhere) instead of waiting for ever."""
        leases = list(self._running.values())
        for queue in self._queues.values():
            leases += queue.idle
        for lease in leases:
            if lease.node.info.get("node_id") == node_id:
                lease.conn.close()

    def _enqueue(self, spec: TaskSpec) -> None:
        if spec.cancelled:
            self._fail(spec, TaskCancelledError())
            return
        if self.worker.node.closed:
            self._fail(spec, RaySystemError(NODE_GONE))
            return
        events = self.worker.task_events
        if events.has_room():  # (else counted as dropped, without building its info)
            events.record(spec.task_id, spec.attempts, "PENDING_NODE_ASSIGNMENT", self._info(spec))
        else:
            events.drop()
        key = spec.scheduling_key
        queue = self._queues.get(key)
        if queue is None:
            actor_id = spec.actor["actor_id"] if spec.actor is not None else b""
            retriable = (
                spec.max_retries != 0 if spec.actor is None else spec.actor["max_restarts"] != 0
            )
            queue = self._queues[key] = TaskQueue(
                spec.resources, actor_id, spec.actor_resources, spec.strategy, retriable
            )
        queue.tasks.append(spec)
        self._pump(queue)

    def _pump(self, queue: TaskQueue) -> None:
        while queue.tasks and queue.idle:
            lease = queue.idle.pop()
            lease.linger.cancel()
            self._fill(queue, lease)
        live = len(queue.requests) - len(queue.cancelled)
        wanted = len(queue.tasks) - live
        while wanted > 0 and live < MAX_LEASE_REQUESTS:
            self._request_lease(queue)
            wanted -= 1
            live += 1
        if not queue.tasks:
            for request_id, node in queue.requests.items():
                if request_id not in queue.cancelled:
                    queue.cancelled.add(request_id)
                    node.send(CancelLeaseRequest(request_id))

    def _request_lease(
        self, queue: TaskQueue, node: Connection | None = None, spilled: bool = False
    ) -> int:
        """Ask our node for a lease (or, with ``node``, the node it spilled us to)."""
        node = node or self.worker.node
        request_id = next(self._request_ids)
        queue.requests[request_id] = node
        first = queue.tasks[0] if queue.tasks else None
        name = first.name if first is not None else ""
        locality = None
        if first is not None and first.resolved and not spilled and queue.strategy is None:
            locality = self._arguments_elsewhere(first)
        fut = node.request(
            RequestLease(
                request_id,
                queue.resources,
                name,
                queue.actor_id,
                queue.actor_resources,
                spilled,
                queue.strategy,
                locality,
                self.worker.node_id if queue.actor_id else b"",
                queue.retriable,
            )
        )
        fut.add_done_callback(partial(self._on_lease_reply, queue, request_id, node))
        return request_id

    def _arguments_elsewhere(self, spec: TaskSpec) -> dict | None:
        """{node id hex: bytes} of the task's shared-memory arguments by the node that
        holds them, if any is on another node (else None): the node may send the task
        where most of them are."""
        by_node: dict = {}
        for _, kind, payload in spec.resolved:
            if kind == ValueKind.SHARED:
                key = payload[2].hex()
                by_node[key] = by_node.get(key, 0) + payload[1]
        if not by_node or list(by_node) == [self.worker.node_id.hex()]:
            return None
        return by_node

    def _on_lease_reply(self, queue: TaskQueue, request_id: int, node: Connection, fut) -> None:
        queue.requests.pop(request_id, None)
        queue.cancelled.discard(request_id)
        queue.reasons.pop(request_id, None)
        if fut.cancelled():
            return
        if isinstance(fut.exception(), ConnectionLost):
            if node is self.worker.node:
                self.fail_all(RaySystemError(NODE_GONE))
            else:  # the node we spilled to is gone: ask ours again
                self._pump(queue)
            return
        if fut.exception() is not None:  # we cancelled the request, or the actor is dead
            if fut.exception().error == "TaskUnschedulableError":
                for spec in list(queue.tasks):
                    self._fail(spec, TaskUnschedulableError(str(fut.exception())))
                queue.tasks.clear()
                return
            if queue.actor_id and fut.exception().error == "ActorDiedError":
                for spec in queue.tasks:
                    self._created(spec)
                queue.tasks.clear()
            self._pump(queue)
            return
        grant = fut.result()
        if type(grant) is LeaseSpillback:
            self.worker.loop.create_task(self._spill(queue, grant))
            return
        conn = self.worker.cached_peer(grant.worker_address)
        if conn is not None:
            lease = Lease(grant, conn, node, node.info.get("node_id", self.worker.node_id))
            self._use_lease(queue, lease)
        else:  # (granted, not idle yet: return_idle_leases waits for it)
            self.connecting += 1
            self.worker.loop.create_task(self._connect_lease(queue, grant, node))

    async def _spill(self, queue: TaskQueue, spillback) -> None:
        """Our node is full: ask the node it named (once; that node grants or queues).
        If that node cannot be reached, ask our own node again: by then its view may
        have the other node dead, and a request queued there can still move on later."""
        try:
            node, spilled = await self.worker.nodes.at(spillback.address), True
        except (OSError, ConnectionError, asyncio.TimeoutError):
            node, spilled = self.worker.node, False
        if queue.tasks:
            request_id = self._request_lease(queue, node, spilled)
            if spilled:
                queue.reasons[request_id] = pending_reasons.spilled(spillback.node_id.hex())

    async def _connect_lease(self, queue: TaskQueue, grant, node: Connection) -> None:
        try:
            conn = await self.worker.peer(grant.worker_address)
        except OSError:
            node.send(ReturnLease(grant.lease_id, True))
            self._pump(queue)
            return
        finally:
            self.connecting -= 1
        lease = Lease(grant, conn, node, node.info.get("node_id", self.worker.node_id))
        self._use_lease(queue, lease)

    def _use_lease(self, queue: TaskQueue, lease: Lease) -> None:
        self._fill(queue, lease)
        self._pump(queue)

    def _fill(self, queue: TaskQueue, lease: Lease) -> None:
        """Push the queue's next task to the lease (and more behind it while its tasks are
        short: Lease.depth), or keep the lease idle a moment if none waits."""
        limit, tasks = lease.depth(queue), queue.tasks
        while tasks and len(lease.tasks) < limit:
            if lease.tasks and tasks[0].generator:
                break  # (a streaming generator is never pushed behind another task)
            self._push(queue, lease, tasks.popleft())
        if not lease.tasks:
            self._linger(queue, lease)

    def _linger(self, queue: TaskQueue, lease: Lease) -> None:
        queue.idle.append(lease)
        lease.linger = self.worker.loop.call_later(LEASE_LINGER_S, self._return, queue, lease)

    async def return_idle_leases(self, settle_s: float = 1.0) -> None:
        """Loop thread: give back now the leases kept idle for reuse, and those granted
        for requests no task needs any more (waiting up to ``settle_s`` for their
        answers, and for the connections to their workers), so a view of free resources
        asked for next, on the same connection, does not count them as used."""
        deadline = self.worker.loop.time() + settle_s
        while True:
            for queue in self._queues.values():
                for lease in list(queue.idle):
                    lease.linger.cancel()
                    self._return(queue, lease)
            unanswered = any(q.requests and not q.tasks for q in self._queues.values())
            if not (unanswered or self.connecting) or self.worker.loop.time() > deadline:
                return
            await asyncio.sleep(0.002)

    def _return(self, queue: TaskQueue, lease: Lease) -> None:
        if lease in queue.idle:
            queue.idle.remove(lease)
            lease.node.send(ReturnLease(lease.lease_id, False))

    # --- running ------------------------------------------------------------------------------

    def _push(self, queue: TaskQueue, lease: Lease, spec: TaskSpec) -> None:
        too_big = self._inline_size(spec) - self.worker.config.max_frame_bytes + 1024 * 1024
        if too_big > 0:
            self._fail(
                spec,
                ValueError(
                    f"The arguments of task {spec.name} are {too_big:,} bytes over the message "
                    "limit (max_frame_bytes) once the values of its ObjectRef arguments are "
                    "included. Pass large data as numpy arrays or bytes (they go to shared memory) "
                    "or as fewer, larger objects."
                ),
            )
            return
        refs = [*spec.nested_refs, *spec.resolved_refs]
        self.worker.grant(refs, lease.worker_address)
        known = lease.conn.info.setdefault("functions", set())
        blob = None
        if spec.function_id not in known:
            known.add(spec.function_id)
            blob = spec.function_blob
        msg = PushTask(
            spec.task_id,
            spec.task_id[-ids.JOB_ID_SIZE :],  # (a task's id ends with its job's)
            spec.name,
            spec.function_id,
            blob,
            spec.args_blob,
            spec.resolved,
            refs,
            spec.num_returns,
            self.worker.address,
            lease.gpu_ids,
            spec.env_vars,
            spec.actor,
            spec.namespace,
            spec.placement,
            spec.attempts,
            self.worker.generator_wire(spec),
            spec.runtime_env,
        )
        self._running[spec.task_id] = lease
        if not lease.tasks:
            lease.since = self.worker.loop.time()
        lease.tasks.append(spec)
        lease.conn.request_then(msg, partial(self._on_reply, queue, lease, spec, spec.attempts))

    def _on_reply(self, queue: TaskQueue, lease: Lease, spec: TaskSpec, attempt: int, fut) -> None:
        error = None if fut.cancelled() else fut.exception()
        if self.worker.stopping:
            return  # shutting down: the cluster stops its workers, no retries
        self._running.pop(spec.task_id, None)
        lost = type(error) is ConnectionLost
        if lost and lease.lost_head is None:
            lease.lost_head = lease.tasks[0]  # (the worker runs its tasks in order)
        lease.tasks.remove(spec)
        if spec.actor is not None:  # the worker is the actor's now; the node tracks how it went
            if attempt == spec.attempts:  # (not the reply of a run replaced by a restart)
                if error is not None or fut.result().app_error:
                    self._record(spec, "FAILED", failure(error))
                else:
                    self._record(spec, "FINISHED")
                self._created(spec)
            return
        if lost and spec is not lease.lost_head:  # it waited behind the
            self._not_started(queue, spec)  # task that was running, and never started
            self._pump(queue)
            return
        if error is not None and spec.cancelled:
            lease.node.send(ReturnLease(lease.lease_id, True))
            self._fail(spec, TaskCancelledError())
            self._pump(queue)
            return
        if error is not None:
            if not isinstance(error, (ConnectionLost, RemoteError)):
                raise error
            # the worker died, or broke the connection: either way the node replaces it
            # (a lease of a worker that is already gone is simply forgotten)
            lease.node.send(ReturnLease(lease.lease_id, True))
            oom = self._oom_kills.pop((lease.node, lease.lease_id), None)
            if oom is not None:  # the node's memory monitor killed it
                self._oom_retry_or_fail(queue, spec, OutOfMemoryError(oom), lease.where)
                return
            crashed = WorkerCrashedError()  # (where: its log tells why; the worker could not)
            self._record(spec, "FAILED", {**failure(crashed), **lease.where})
            self._retry_or_fail(queue, spec, crashed, "its worker died")
            self._pump(queue)
            return
        reply = fut.result()
        if reply.app_error == TASK_NOT_STARTED:  # the task ahead of it is long: run it elsewhere
            queue.task_s = math.inf
            self._not_started(queue, spec)
            self._use_lease(queue, lease)
            return
        now = self.worker.loop.time()
        queue.task_s = now - lease.since
        lease.since = now
        if reply.app_error == ARGUMENT_LOST and self.worker.wait_for_lost_argument(
            spec, reply.returns, partial(self._resolve_again, spec)
        ):
            self._use_lease(queue, lease)
            return
        if reply.app_error:
            self._record(spec, "FAILED", failure(None))
        if reply.app_error and self._retryable(spec, reply.returns):
            self._retry_or_fail(queue, spec, None, "it raised an exception")
        else:
            if not reply.app_error:
                self._record(spec, "FINISHED")
            if reply.app_error and spec.num_returns == 0:  # no ref will ever show it
                report_unhandled_error(reply.returns[0][1])
            self._finish(spec, None if reply.app_error else reply.returns)  # before the
            # results: storing them may wake the caller's thread
            self.worker.store_returns(spec.return_ids, reply.returns, lease.worker_address)
        self._use_lease(queue, lease)

    def _not_started(self, queue: TaskQueue, spec: TaskSpec) -> None:
        """A task pushed behind another came back unstarted: it runs again, no retry spent."""
        self.handed_back += 1
        self._requeue(queue, spec)

    def _requeue(self, queue: TaskQueue, spec: TaskSpec) -> None:
        """Put a task back at the head of its queue, unless it was cancelled meanwhile."""
        if spec.cancelled:
            self._fail(spec, TaskCancelledError())
        else:
            queue.tasks.appendleft(spec)

    @staticmethod
    def _inline_size(spec: TaskSpec) -> int:
        size = len(spec.args_blob)
        for _, kind, payload in spec.resolved:
            if kind == ValueKind.INLINE:
                size += sum(len(part) for part in payload)
        return size

    def _retryable(self, spec: TaskSpec, entries: list) -> bool:
        if spec.cancelled or not spec.retry_exceptions or not self._retries_left(spec):
            return False
        if spec.retry_exceptions is True:
            return True
        try:
            cause = pickle.loads(entries[0][1]).cause
        except Exception:
            return False
        return isinstance(cause, spec.retry_exceptions)

    def _retries_left(self, spec: TaskSpec) -> bool:
        return spec.max_retries == -1 or spec.attempts < spec.max_retries

    def _retry_or_fail(self, queue: TaskQueue, spec: TaskSpec, error, why: str) -> None:
        if self._retries_left(spec):
            if error is not None:
                self._record(spec, "FAILED", failure(error))
            spec.attempts += 1
            spec.attempt_reason = "RETRY"
            self.retried += 1
            self._record(spec, "PENDING_NODE_ASSIGNMENT", self._info(spec))
            left = "infinite" if spec.max_retries == -1 else spec.max_retries - spec.attempts
            logger.warning(
                "Task %s failed because %s; retrying (%s retries left).", spec.name, why, left
            )
            queue.tasks.appendleft(spec)
        else:
            self._fail(spec, error)

    def oom_killed(self, node: Connection, lease_id: int, message: str) -> None:
        """Loop thread: the node's memory monitor is killing this lease's worker."""
        self._oom_kills[(node, lease_id)] = message
        while len(self._oom_kills) > 256:  # kills of leases that ran nothing are never asked for
            del self._oom_kills[next(iter(self._oom_kills))]

    def _oom_retry_or_fail(self, queue: TaskQueue, spec: TaskSpec, error: BaseException, where):
        """A task killed for memory runs again after a growing delay, on its own budget
        (CONFIG.task_oom_retries), unless it must not run again (max_retries=0)."""
        self._record(spec, "FAILED", {**failure(error), **where})
        limit = self.worker.config.task_oom_retries
        if spec.max_retries == 0 or spec.cancelled or 0 <= limit <= spec.oom_kills:
            self._fail(spec, error)
            self._pump(queue)
            return
        delay = min(60.0, self.worker.config.task_oom_retry_delay_s * 2**spec.oom_kills)
        spec.oom_kills += 1
        logger.warning(
            "Task %s was killed because its node ran low on memory; retrying in %.1f s "
            "(%s memory retries left).", spec.name, delay,
            "infinite" if limit < 0 else limit - spec.oom_kills,
        )  # fmt: skip
        self._record(spec, "PENDING_NODE_ASSIGNMENT", self._info(spec))
        self.worker.loop.call_later(delay, self._enqueue_again, queue, spec)
        self._pump(queue)

    def _enqueue_again(self, queue: TaskQueue, spec: TaskSpec) -> None:
        self._requeue(queue, spec)
        self._pump(queue)

    # --- finishing ------------------------------------------------------------------------------

    def _fail(self, spec: TaskSpec, error: BaseException) -> None:
        self._record(spec, "FAILED", failure(error))
        if spec.actor is not None:  # the actor can never start: the node tells its callers
            self.worker.node.send(ActorCreationFailed(spec.actor["actor_id"], pickled_error(error)))
            self._created(spec)
            return
        store_error(self.worker, spec, error)
        self._finish(spec)

    def _finish(self, spec: TaskSpec, returns: list | None = None) -> None:
        """The task ran (``returns``: its results, if it succeeded) or never will: keep it
        to run again if a result is lost, or let its arguments go."""
        self._in_flight.pop(spec.task_id, None)
        self.worker.task_done(spec, returns)

    # --- actor creation -------------------------------------------------------------------------

    def _created(self, spec: TaskSpec) -> None:
        """An actor's creation task ran (or never will); keep its arguments for restarts."""
        self._in_flight.pop(spec.task_id, None)
        self._queues.pop(spec.scheduling_key, None)
        if spec.actor["max_restarts"] == 0:
            release_arguments(self.worker, spec)

    def restart_actor(self, spec: TaskSpec) -> None:
        """Run an actor's creation task again (its arguments are still resolved)."""
        spec.actor = {**spec.actor, "restarted": True}
        spec.attempts += 1
        self._in_flight[spec.task_id] = spec
        self._enqueue(spec)

    def forget_actor(self, spec: TaskSpec) -> None:
        """The actor is out of scope: what its creation task holds can go."""
        if spec.actor["max_restarts"] != 0:
            release_arguments(self.worker, spec)

    def cancel(self, task_id: bytes, force: bool, recursive: bool) -> Connection | None:
        """Cancel a task of this process: drop it if queued, interrupt it if running
        (``recursive``: its worker cancels what it submitted too). Returns the connection
        the cancel went on, if it was sent."""
        self._inbox.drain()  # (submitted, not looked at yet)
        spec = self._in_flight.get(task_id)
        if spec is None or spec.actor is not None:
            return None  # finished already, or not ours
        if spec.cancelled and not force:
            return None  # once is enough (a second interrupt could hit its cleanup)
        spec.cancelled = True
        queue = self._queues.get(spec.scheduling_key)
        if queue is not None and spec in queue.tasks:
            queue.tasks.remove(spec)
            self._fail(spec, TaskCancelledError())
            self._pump(queue)
            return None
        lease = self._running.get(task_id)
        if lease is None:
            return None  # its arguments are not ready yet; _enqueue fails it
        lease.conn.send(CancelTask(task_id, force, recursive))
        return lease.conn

    def children_of(self, task_id: bytes) -> list[bytes]:
        """The unfinished tasks that ``task_id`` submitted from this process (a scan: cancel
        is rare, and an index would cost every task)."""
        self._inbox.drain()  # (submitted, not looked at yet)
        return [spec.task_id for spec in self._in_flight.values() if spec.parent == task_id]

    def task_status(self, object_id: bytes) -> tuple[str, int]:
        """The state API's task status and attempt of the task making ``object_id``."""
        spec = self._in_flight.get(object_id[: ids.TASK_ID_SIZE])
        if spec is None:
            return "NIL", 0
        running = spec.task_id in self._running
        return ("SUBMITTED_TO_WORKER" if running else "PENDING_NODE_ASSIGNMENT"), spec.attempts

    def has_work(self) -> bool:
        """Tasks submitted and not finished, or submissions not yet looked at."""
        return bool(self._in_flight or self._inbox)

    def cancel_timers(self) -> None:
        for queue in self._queues.values():
            for lease in queue.idle:
                lease.linger.cancel()
            queue.idle.clear()

    def fail_all(self, error: BaseException) -> None:
        """The node is gone: fail every task not finished yet."""
        for spec in list(self._in_flight.values()):
            self._fail(spec, error)
        for queue in self._queues.values():
            queue.tasks.clear()
        self.cancel_timers()
