"""CoreWorker: the runtime in every process that runs user code (driver and workers).

User code runs on the main thread; a uvloop event loop on the ``minray-loop``
thread does all I/O and owner bookkeeping. The rule between the two threads:

* the loop thread owns the memory store's waiters, the connections and the
  task submitter; the main thread hands work to it with ``call_soon_threadsafe``
  (hot paths skip the hand-off under a lock: ``Connection.send_threadsafe``,
  ``MemoryStore.add_callback``, ``ActorSubmitter._push_now``);
* reference counts change under ``_lock`` from either thread; a dropped
  ``ObjectRef`` (``__del__``, which may run inside any allocation) only tries the
  lock, and leaves the id in a deque for the loop when it is busy;
* values are deserialized on the thread that asked for them.

One class serves drivers and workers; a worker additionally runs a
:class:`TaskExecutor` on its main thread.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import logging
import os
import socket
import sys
import threading
from typing import Any

from .. import _loop, ids, object_ref, serialization
from ..config import CONFIG, Config
from ..exceptions import ObjectStoreFullError, RaySystemError, error_from_reply
from ..object_ref import ObjectRef
from ..protocol.connection import Connection, ConnectionLost, RemoteError, connect, serve
from ..protocol.messages import (
    CreateObject,
    ExitReply,
    FreeObjects,
    GetObject,
    ObjectReply,
    RegisterClient,
    ReleaseGrants,
    ValueKind,
)
from ..protocol.reach import LOOPBACK, listens_on_tcp
from .actor_submitter import ActorSubmitter
from .cancellation import Cancellation
from .generator_streams import GeneratorStreams
from .lost_objects import LostObjects
from .memory_store import MemoryStore, StoredValue
from .node_links import NodeLinks
from .node_notices import NodeNotices
from .object_reader import SHUT_DOWN, ObjectReader
from .object_rows import ObjectRowsMixin
from .owned_actors import OwnedActors
from .peers import PeerConnections
from .reconstruction import Reconstruction
from .refcount import Free, ReferenceCounter, Release
from .segment_maps import SegmentMaps
from .stack_sampling import StackSampling
from .task_context import TaskContext, _task_context
from .task_events import TaskEventBuffer
from .task_outcomes import report_unhandled_error
from .task_submitter import NODE_GONE, TaskSubmitter

logger = logging.getLogger("minray")


class CoreWorker(
    NodeNotices,
    PeerConnections,
    Cancellation,
    GeneratorStreams,
    OwnedActors,
    Reconstruction,
    LostObjects,
    ObjectRowsMixin,
    StackSampling,
):
    def __init__(
        self,
        *,
        mode: str,
        node_address: str,
        session_dir: str,
        token: bytes,
        job_id: bytes,
        worker_id: bytes | None = None,
        config: Config = CONFIG,
        node_ip: str = LOOPBACK,
        namespace: str = "",
    ):
        self.mode = mode
        self.config = config
        self.worker_id = worker_id or ids.random_unique_id()
        self.job_id = job_id
        self.session_dir = session_dir
        self.node_address = node_address
        self.token = token
        self.node_ip = node_ip  #: the address of this process's node
        self.namespace = namespace  #: a driver's, set by init (a worker's comes with each task)
        #: a driver of a running cluster exits when its node goes (set by init)
        self.exit_with_node = False
        self.socket_path = os.path.join(session_dir, "sockets", self.worker_id.hex()[:16])
        self._listener: socket.socket | None = None
        if listens_on_tcp(node_ip):  # peers may be on other machines
            family = socket.AF_INET6 if ":" in node_ip else socket.AF_INET
            self._listener = socket.create_server((node_ip, 0), family=family, backlog=128)
            self.address = f"tcp:{node_ip}:{self._listener.getsockname()[1]}"
        else:
            self.address = f"unix:{self.socket_path}"
        self.store = MemoryStore()
        self.task_events = TaskEventBuffer(config.task_events, config.task_events_buffer_size)
        self.refs = ReferenceCounter(self.address)
        self.submitter = TaskSubmitter(self)
        self.init_lineage()
        self.segments = SegmentMaps(self._send_to_node)
        self.nodes = NodeLinks(self)  #: connections to other nodes (spilled leases, objects)
        self.objects = ObjectReader(self)
        self.executor = None
        self.local_runner = None  #: init(local_mode=True): runs tasks here (local_mode.py)
        self.actors = ActorSubmitter(self)
        #: actors this process created: actor id -> creation TaskSpec (for restarts)
        self.owned_actors: dict[bytes, Any] = {}
        #: lifetime object id of each owned actor -> actor id (freed: the actor goes)
        self._actor_lifetimes: dict[bytes, bytes] = {}
        self.node: Connection | None = None
        self.node_id = b""
        self.node_resources: dict = {}
        self.alive = False
        #: set by shutdown(): failures from now on are the cluster stopping, not faults
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._loop_thread_id = 0
        self._server = None
        self._lock = threading.Lock()
        self._dropped: collections.deque = collections.deque()  #: ids whose count drops later
        self._later_actions: collections.deque = collections.deque()  #: for the loop, batched
        self._drain_scheduled = False
        self._peer_conns: dict[str, Connection] = {}
        self._accepted_conns: set[Connection] = set()  #: connections others opened to us
        self._dialing: dict[str, asyncio.Future] = {}
        #: print workers' output lines (init's log_to_driver)
        self.log_to_driver = True
        self._infeasible_warned: set = set()
        #: ids of errors raised to the user (the others are logged when freed)
        self._errors_seen: set = set()

    # --- the task running now ------------------------------------------------------------

    def current_job_id(self) -> bytes:
        """The job this code runs for: the running task's, else (in a driver) its own."""
        context = _task_context.get()
        return context.job_id if context is not None else self.job_id

    def current_namespace(self) -> str:
        """The namespace of the job this code runs for: the running task's, else (in a
        driver) the one ``init`` chose."""
        context = _task_context.get()
        return context.namespace if context is not None else self.namespace

    @property
    def current_task(self) -> TaskContext | None:
        """The task or actor call running on the calling thread (None in driver code)."""
        return _task_context.get()

    def set_task_context(self, context: TaskContext | None) -> contextvars.Token:
        return _task_context.set(context)

    def reset_task_context(self, token: contextvars.Token) -> None:
        _task_context.reset(token)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        self.loop = _loop.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run_loop, args=(started,), name="minray-loop", daemon=True
        )
        self._thread.start()
        started.wait()
        self.run_sync(self._start_async(), timeout)
        self.alive = True
        object_ref.current_worker = self

    def _run_loop(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self._loop_thread_id = threading.get_ident()
        started.set()
        self.loop.run_forever()

    async def _start_async(self) -> None:
        self._server = await serve(
            self.address,
            self,
            self.token,
            self.config.max_frame_bytes,
            on_connect=self._accepted,
            sock=self._listener,
        )
        self.node = await connect(self.node_address, self, self.token, self.config.max_frame_bytes)
        self.node.close_callbacks.append(self._node_closed)
        info = {"namespace": self.namespace, "entrypoint": " ".join(sys.argv),  # a driver's,
                "submission_id": os.environ.get("MINRAY_JOB_SUBMISSION_ID", "")}  # fmt: skip
        mine = RegisterClient(self.mode, self.worker_id, self.address, os.getpid(), self.job_id,
                              info if self.mode == "driver" else None)  # fmt: skip
        reply = await self.node.request(mine)  # (info: for the head's job table, docs/jobs.md)
        self.node_id = reply.node_id
        where = {"node_id": self.node_id.hex(), "worker_id": self.worker_id.hex()}
        self.task_events.source = {**where, "worker_pid": os.getpid()}
        self.task_events.start(self.loop, self.node.send)
        self.node_resources = reply.resources
        if reply.job_id:  # a driver's own job, from the head
            self.job_id = reply.job_id

    def stop(self) -> None:
        """Close connections and stop the loop thread (the process may go on)."""
        if object_ref.current_worker is self:
            object_ref.current_worker = None
        if self._thread is None or self.loop.is_closed():
            return
        self.alive = False
        self.objects.wake_all()
        if self.local_runner is not None:
            self.local_runner.close()
        try:
            self.run_sync(self._stop_async(), 5)
        except Exception:
            logger.debug("error while stopping the CoreWorker", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            try:
                self.loop.close()
            except OSError:  # a handle still closing: its descriptors go at exit
                logger.debug("event loop not closed cleanly", exc_info=True)
        self.segments.forget_all()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    async def _stop_async(self) -> None:
        self.task_events.stop(self.node.send if self.node is not None else None)
        for _ in range(100):  # the last task events leave before we close (at most ~1 s)
            if self.node is None or self.node.written():
                break
            await asyncio.sleep(0.01)
        if self._server is not None:
            self._server.close()
        for conn in [*self._peer_conns.values(), *self._accepted_conns]:
            conn.close()
        self.nodes.close_all()
        if self.node is not None:
            self.node.close_callbacks.clear()
            self.node.close()
        # wake every thread still waiting on this loop (get, wait, await ref): they
        # get RaySystemError instead of waiting forever
        current = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is not current:
                task.cancel()
        self.submitter.cancel_timers()
        await asyncio.sleep(0.005)  # let transports finish closing before the loop stops

    # --- threads -----------------------------------------------------------------------

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread_id

    def call_soon(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the loop thread (now, if already there)."""
        if self.on_loop_thread():
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def run_sync(self, coro, timeout: float | None = None):
        """Run a coroutine on the loop from another thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _send_to_node(self, msg, node_id: bytes | None = None) -> None:
        """Send a notification to this process's node, or to the node ``node_id``, from
        any thread (even a finalizer)."""
        if self.alive and self.node is not None:
            try:
                if node_id is None or node_id == self.node_id:
                    self.loop.call_soon_threadsafe(self.node.send, msg)
                else:
                    self.loop.call_soon_threadsafe(self.nodes.send, node_id, msg)
            except RuntimeError:  # the loop is closed: we are shutting down
                pass

    def call_node(self, msg, timeout: float | None = None):
        """Send a request to the node from a non-loop thread and wait for the reply."""

        async def request():
            return await self.node.request(msg)

        try:
            return self.run_sync(request(), timeout)
        except concurrent.futures.CancelledError:
            raise RaySystemError(SHUT_DOWN) from None
        except ConnectionLost:
            raise RaySystemError(NODE_GONE) from None

    # --- reference counting ------------------------------------------------------------------

    def owner_of(self, object_id: bytes) -> str | None:
        with self._lock:
            return self.refs.owner_of(object_id)

    def add_local_ref(self, object_id: bytes, owner: str | None) -> None:
        with self._lock:
            self.refs.add_local(object_id, owner or "")

    def remove_local_ref(self, object_id: bytes, owner: str | None = None) -> None:
        """Called from ``ObjectRef.__del__``, which may run inside any allocation.

        For an object this process owns, off the loop thread, if the lock is free, the
        count changes now (this thread cannot be in the middle of a change: it would hold
        the lock). Otherwise the loop does it later, in a batch, between callbacks: never
        wait for the lock here, and never carry out actions in the middle of whatever loop
        code the finalizer interrupted. (Borrowed refs always wait for the batch: their
        releases travel together.)
        """
        if (
            owner == self.address
            and self.alive
            and not self.on_loop_thread()
            and self._lock.acquire(blocking=False)
        ):
            try:
                actions = self.refs.remove_local(object_id)
            finally:
                self._lock.release()
            if not actions or self._free_inline_here(actions):
                return
            # anything else (a segment, a grant to release...) goes to the loop in a batch:
            # dropping a list of 10,000 borrowed refs sends one ReleaseGrants, not 10,000
            self._later_actions.extend(actions)
        else:
            self._dropped.append(object_id)
        if not self._drain_scheduled and self.alive:
            self._drain_scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._drain_dropped)
            except RuntimeError:  # loop closed during shutdown
                pass

    def _drain_dropped(self) -> None:
        self._drain_scheduled = False
        actions: list = []
        while self._later_actions:
            actions.append(self._later_actions.popleft())
        with self._lock:
            while self._dropped:
                actions += self.refs.remove_local(self._dropped.popleft())
        self._apply_actions(actions)

    def update_refs(self, fn, *args) -> None:
        """Call a ReferenceCounter method under the lock and carry out what it returns."""
        with self._lock:
            actions = fn(*args)
        self._apply_actions(actions)

    def _apply_actions(self, actions: list) -> None:
        if actions and (self.on_loop_thread() or not self._free_inline_here(actions)):
            self.call_soon(self._apply_actions_now, actions)

    def _free_inline_here(self, actions: list) -> bool:
        """Off the loop: carry out actions that only drop small inline values (no message to
        send, no error to report), without waking the loop. False: leave all to the loop."""
        kept = self.lineage.kept
        for action in actions:
            if type(action) is not Free or action.object_id in self._actor_lifetimes:
                return False
            if kept and action.object_id[: ids.TASK_ID_SIZE] in kept:
                return False  # its task's lineage may be let go (loop thread)
            value = self.store.get(action.object_id)
            if value is not None and value.kind != ValueKind.INLINE:
                return False
        for action in actions:
            self.store.delete(action.object_id)
        return True

    def _apply_actions_now(self, actions: list) -> None:
        freed_segments = []
        releases: dict[str, list] = {}
        for action in actions:
            if type(action) is Free:
                if action.object_id in self._actor_lifetimes:
                    self._actor_out_of_scope(self._actor_lifetimes.pop(action.object_id))
                    continue
                if self.lineage.kept:
                    self.result_freed(action.object_id)
                value = self.store.delete(action.object_id)
                if value is None:
                    continue
                if value.kind == ValueKind.SHARED:
                    freed_segments.append((value.payload[2], action.object_id))
                elif value.kind == ValueKind.ERROR:
                    self._report_if_unseen(action.object_id, value)
            elif type(action) is Release:
                releases.setdefault(action.grantor, []).append([action.object_id, action.count])
        if freed_segments and self.node is not None:
            by_node: dict[bytes, list] = {}
            for node_id, object_id in freed_segments:  # the node that accounts for it
                by_node.setdefault(node_id, []).append(object_id)
            for node_id, object_ids in by_node.items():
                self.nodes.send(node_id, FreeObjects(object_ids))
        for grantor, items in releases.items():
            self.loop.create_task(self._send_release(grantor, items))

    def error_seen(self, object_id: bytes) -> None:
        """The error of this object reached the user (directly or through a dependent task)."""
        self._errors_seen.add(object_id)

    def _report_if_unseen(self, object_id: bytes, value: StoredValue) -> None:
        """An error nobody ever got is about to vanish: show it, as Ray does."""
        if object_id in self._errors_seen:
            self._errors_seen.discard(object_id)
        elif not os.environ.get("MINRAY_IGNORE_UNHANDLED_ERRORS"):
            report_unhandled_error(value.payload)

    async def _send_release(self, grantor: str, items: list) -> None:
        try:
            conn = await self.peer(grantor)
        except OSError:
            return  # the grantor is gone, and with it what we would release
        conn.send(ReleaseGrants(self.address, items))

    def take_grants(self, refs: list, grantor: str) -> None:
        """A message brought these refs: count the grant and hold them until read."""
        if not refs:
            return
        actions: list = []
        with self._lock:
            for object_id, owner in refs:
                actions += self.refs.record_grant(object_id, owner, grantor)
                self.refs.add_hold(object_id, owner)
        self._apply_actions(actions)

    def release_holds(self, refs: list) -> None:
        if refs:
            with self._lock:
                actions = []
                for object_id, _ in refs:
                    actions += self.refs.remove_hold(object_id)
            self._apply_actions(actions)

    def grant(self, refs: list, borrower: str) -> None:
        """We are sending these refs to ``borrower``: count it until it releases them."""
        if refs:
            with self._lock:
                for object_id, _ in refs:
                    self.refs.add_borrower(object_id, borrower)

    # --- objects: writing ---------------------------------------------------------------------

    def put(self, value: Any) -> ObjectRef:
        try:
            s = serialization.serialize(value)
        except Exception as e:
            raise TypeError(
                "Could not serialize the value passed to put(): "
                + serialization.describe_unpicklable(value, "the value")
            ) from e
        return self.put_serialized(s)

    def put_serialized(self, s: serialization.Serialized) -> ObjectRef:
        """Store an already serialized value as a new object this process owns."""
        object_id = ids.object_id_for(ids.new_task_id(self.current_job_id()), 0)
        with self._lock:
            self.refs.add_owned(object_id)
            self.refs.set_contains(object_id, s.refs)
        ref = ObjectRef(object_id, self.address)
        self.store.put_new(object_id, self.store_serialized(object_id, s, self.address))
        return ref

    def store_serialized(
        self, object_id: bytes, s: serialization.Serialized, owner: str
    ) -> StoredValue:
        """Make a StoredValue for ``s``: inline if small, else in a new shared segment."""
        if s.size <= self.config.max_inline_bytes:
            return StoredValue(ValueKind.INLINE, serialization.to_inline(s), s.refs)
        plan = serialization.plan_segment(s)
        try:  # (the node may spill other objects to disk to make room)
            written = self.segments.take_written()
            reply = self.call_node(CreateObject(object_id, plan.total_size, owner, written))
        except RemoteError as e:
            raise error_from_reply(e.error, str(e)) from None
        try:
            mem = self.segments.writable(reply.segment, reply.size, reply.reused)
            serialization.write_segment(mem, plan, s)
        except BaseException as e:  # noqa: B036 - also Ctrl-C: give the reservation back
            self._send_to_node(FreeObjects([object_id]))
            if isinstance(e, OSError):
                raise ObjectStoreFullError(
                    f"could not allocate {plan.total_size:,} bytes of shared memory for an "
                    f"object ({e.strerror or e}); /dev/shm may be smaller than "
                    "object_store_memory. Free objects you no longer need or give the machine "
                    "more shared memory."
                ) from None
            raise
        finally:  # written (or given up): the writer's pin goes with the next CreateObject
            self.segments.done_writing(reply.segment)
        return StoredValue(
            ValueKind.SHARED, [reply.segment, reply.size, self.node_id, object_id], s.refs
        )

    def store_returns(self, return_ids: list, entries: list, grantor: str) -> None:
        """Loop thread: a task's results arrived from ``grantor``."""
        actions = []
        arrivals = []
        with self._lock:
            for object_id, (kind, payload, refs) in zip(return_ids, entries):
                for ref_id, owner in refs:
                    actions += self.refs.record_grant(ref_id, owner, grantor)
                if object_id in self.refs:
                    old = self.store.get(object_id)
                    if old is not None:  # a task run again to rebuild a lost sibling
                        actions += self.replaced_value(object_id, old, kind, payload)
                    self.refs.set_contains(object_id, refs)
                    arrivals.append(  # (no refs: the shared empty tuple, not a list each)
                        self.store.put_quietly(object_id, StoredValue(kind, payload, refs or ()))
                    )
                else:  # every ref to the result is gone already
                    for ref_id, owner in refs:
                        self.refs.add_hold(ref_id, owner)
                        actions += self.refs.remove_hold(ref_id)
                    if kind == ValueKind.SHARED:
                        self.nodes.send(payload[2], FreeObjects([object_id]))
        self._apply_actions(actions)
        for arrival in arrivals:  # last: a thread woken here finds the lock free
            self.store.announce(arrival)

    # --- handlers (loop thread) ---------------------------------------------------------------

    def handle_GetObject(self, conn: Connection, msg: GetObject):
        conn.info.setdefault("peer", msg.reader)
        value = self.store.get(msg.object_id)
        if value is not None:
            return self._object_reply(value, msg.reader)
        fut = self.loop.create_future()

        async def reply_when_ready():
            stored = await self.objects.fetch(msg.object_id, self.address)
            fut.set_result(self._object_reply(stored, msg.reader))

        self.loop.create_task(reply_when_ready())
        return fut

    def _object_reply(self, value: StoredValue, reader: str) -> ObjectReply:
        self.grant(value.refs, reader)
        return ObjectReply(value.kind, value.payload, value.refs)

    def handle_ReleaseGrants(self, conn: Connection, msg: ReleaseGrants) -> None:
        conn.info.setdefault("peer", msg.sender)
        with self._lock:
            actions = []
            for object_id, count in msg.items:
                actions += self.refs.remove_borrower(object_id, msg.sender, count)
        self._apply_actions_now(actions)

    def handle_ExitIfIdle(self, conn: Connection, msg) -> ExitReply:
        # any counted ref means someone relies on this process: an object it owns, or a
        # grant it passed on to a borrower (which would break if we left)
        with self._lock:
            holds_refs = len(self.refs) > 0
        busy = (
            (self.executor is not None and self.executor.running > 0)
            or self.submitter.has_work()
            or self.actors.has_work()
        )
        return ExitReply(not holds_refs and not busy)

    def handle_SegmentsRemoved(self, conn: Connection, msg) -> None:
        self.segments.forget(msg.segments)

    def handle_PushTask(self, conn: Connection, msg):
        if self.executor is None:
            raise ValueError("this process is a driver; it does not run tasks")
        return self.executor.on_push(conn, msg)

    handle_PushActorTask = handle_PushTask

    def handle_ExitActor(self, conn: Connection, msg) -> None:
        if self.executor is not None:
            self.executor.on_exit_actor(msg)

    def handle_CancelTask(self, conn: Connection, msg) -> None:
        if self.executor is not None:
            self.executor.on_cancel(msg)
