"""CoreWorker: the runtime in every process that runs user code (driver and workers).

User code runs on the main thread; a uvloop event loop on the ``minray-loop``
thread does all I/O and owner bookkeeping. The rule between the two threads:

* the loop thread owns the memory store's waiters, the connections and the
  task submitter; the main thread hands work to it with ``call_soon_threadsafe``;
* reference counts change under ``_lock`` from either thread, except that a
  dropped ``ObjectRef`` (``__del__``, which may run inside any allocation) only
  appends to a deque that the loop drains;
* values are deserialized on the thread that asked for them.

One class serves drivers and workers; a worker additionally runs a
:class:`TaskExecutor` on its main thread.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import pickle
import sys
import threading
from typing import Any

from .. import _loop, ids, object_ref, serialization
from ..config import CONFIG, Config
from ..exceptions import (
    GetTimeoutError,
    ObjectLostError,
    ObjectStoreFullError,
    OwnerDiedError,
    RaySystemError,
    RayTaskError,
    UnserializableException,
)
from ..object_ref import ObjectRef
from ..object_store import shm
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
    WorkerBlocked,
)
from .memory_store import MemoryStore, StoredValue
from .refcount import Free, ReferenceCounter, Release
from .segment_maps import SegmentMaps
from .task_submitter import NODE_GONE, TaskSubmitter, report_unhandled_error

logger = logging.getLogger("minray")

SHUT_DOWN = "minray was shut down while this call was waiting; call minray.init() to start again"


class TaskContext:
    """What the main thread is running right now (for the runtime context and logs)."""

    __slots__ = ("task_id", "name", "gpu_ids", "job_id")

    def __init__(self, task_id: bytes, name: str, gpu_ids: list, job_id: bytes):
        self.task_id = task_id
        self.name = name
        self.gpu_ids = gpu_ids
        self.job_id = job_id


class CoreWorker:
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
    ):
        self.mode = mode
        self.config = config
        self.worker_id = worker_id or ids.random_unique_id()
        self.job_id = job_id
        self.session_dir = session_dir
        self.node_address = node_address
        self.token = token
        self.socket_path = os.path.join(session_dir, "sockets", self.worker_id.hex()[:16])
        self.address = f"unix:{self.socket_path}"
        self.store = MemoryStore()
        self.refs = ReferenceCounter(self.address)
        self.submitter = TaskSubmitter(self)
        self.segments = SegmentMaps(self._send_to_node)
        self.executor = None
        self.current_task: TaskContext | None = None
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
        self._dropped: collections.deque = collections.deque()
        self._drain_scheduled = False
        self._peer_conns: dict[str, Connection] = {}
        self._dialing: dict[str, asyncio.Future] = {}
        self._on_node_lost = None
        #: print workers' output lines (init's log_to_driver)
        self.log_to_driver = True
        self._infeasible_warned: set = set()
        #: ids of errors raised to the user (the others are logged when freed)
        self._errors_seen: set = set()

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
            self.address, self, self.token, self.config.max_frame_bytes, on_connect=self._accepted
        )
        self.node = await connect(self.node_address, self, self.token, self.config.max_frame_bytes)
        self.node.close_callbacks.append(self._node_closed)
        reply = await self.node.request(
            RegisterClient(self.mode, self.worker_id, self.address, os.getpid(), self.job_id)
        )
        self.node_id = reply.node_id
        self.node_resources = reply.resources

    def stop(self) -> None:
        """Close connections and stop the loop thread (the process may go on)."""
        if object_ref.current_worker is self:
            object_ref.current_worker = None
        if self._thread is None or self.loop.is_closed():
            return
        self.alive = False
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
        if self._server is not None:
            self._server.close()
        for conn in list(self._peer_conns.values()):
            conn.close()
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

    def _node_closed(self, conn: Connection) -> None:
        # the node that would unlink our shared-memory objects is gone: do it ourselves
        for object_id in list(self.refs_owned_shared()):
            shm.unlink(self.store.get(object_id).payload[0])
        if self.mode == "worker":
            os._exit(1)  # the node is gone: nothing left to work for
        self.submitter.fail_all(RaySystemError(NODE_GONE))
        if self._on_node_lost is not None:
            self._on_node_lost()

    def refs_owned_shared(self) -> list:
        """Ids of the shared-memory objects in this process's memory store."""
        return [oid for oid, value in self.store.items() if value.kind == ValueKind.SHARED]

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

    def _send_to_node(self, msg) -> None:
        """Send a notification to the node from any thread (even a finalizer)."""
        if self.alive and self.node is not None:
            try:
                self.loop.call_soon_threadsafe(self.node.send, msg)
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

    # --- connections to other CoreWorkers -------------------------------------------------

    async def peer(self, address: str) -> Connection:
        conn = self._peer_conns.get(address)
        if conn is not None:
            return conn
        fut = self._dialing.get(address)
        if fut is None:
            fut = self._dialing[address] = self.loop.create_task(self._dial(address))
        try:
            return await asyncio.shield(fut)
        finally:
            if fut.done():
                self._dialing.pop(address, None)

    def cached_peer(self, address: str) -> Connection | None:
        return self._peer_conns.get(address)

    async def _dial(self, address: str) -> Connection:
        conn = await connect(address, self, self.token, self.config.max_frame_bytes)
        conn.info["peer"] = address
        conn.close_callbacks.append(self._peer_closed)
        self._peer_conns[address] = conn
        return conn

    def _accepted(self, conn: Connection) -> None:
        conn.close_callbacks.append(self._peer_closed)

    def _peer_closed(self, conn: Connection) -> None:
        address = conn.info.get("peer")
        if address is None or not self.alive:
            return
        if self._peer_conns.get(address) is conn:
            del self._peer_conns[address]
        with self._lock:
            actions = self.refs.peer_died(address)
        self._apply_actions(actions)

    # --- reference counting ------------------------------------------------------------------

    def owner_of(self, object_id: bytes) -> str | None:
        with self._lock:
            return self.refs.owner_of(object_id)

    def add_local_ref(self, object_id: bytes, owner: str | None) -> None:
        with self._lock:
            self.refs.add_local(object_id, owner or "")

    def remove_local_ref(self, object_id: bytes) -> None:
        """Called from ``ObjectRef.__del__``: defer to the loop, never take the lock here."""
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
        with self._lock:
            while self._dropped:
                actions += self.refs.remove_local(self._dropped.popleft())
        self._apply_actions(actions)

    def update_refs(self, fn, *args) -> None:
        """Call a ReferenceCounter method under the lock and carry out what it returns."""
        with self._lock:
            actions = fn(*args)
        if actions:
            self._apply_actions(actions)

    def _apply_actions(self, actions: list) -> None:
        if actions:
            self.call_soon(self._apply_actions_now, actions)

    def _apply_actions_now(self, actions: list) -> None:
        freed_segments = []
        releases: dict[str, list] = {}
        for action in actions:
            if type(action) is Free:
                value = self.store.delete(action.object_id)
                if value is None:
                    continue
                if value.kind == ValueKind.SHARED:
                    freed_segments.append(action.object_id)
                elif value.kind == ValueKind.ERROR:
                    self._report_if_unseen(action.object_id, value)
            elif type(action) is Release:
                releases.setdefault(action.grantor, []).append([action.object_id, action.count])
        if freed_segments and self.node is not None:
            self.node.send(FreeObjects(freed_segments))
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

    def _take_grants(self, refs: list, grantor: str) -> None:
        """A message brought these refs: count the grant and hold them until read."""
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
        object_id = ids.object_id_for(ids.new_task_id(self.job_id), 0)
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
        try:
            reply = self.call_node(CreateObject(object_id, plan.total_size, owner))
            mem = self.segments.writable(reply.segment, reply.size, reply.reused)
            serialization.write_segment(mem, plan, s)
        except RemoteError as e:
            raise _remote_error(e) from None
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
        return StoredValue(ValueKind.SHARED, [reply.segment, reply.size, self.node_id], s.refs)

    def store_returns(self, return_ids: list, entries: list, grantor: str) -> None:
        """Loop thread: a task's results arrived from ``grantor``."""
        actions = []
        with self._lock:
            for object_id, (kind, payload, refs) in zip(return_ids, entries):
                for ref_id, owner in refs:
                    actions += self.refs.record_grant(ref_id, owner, grantor)
                if object_id in self.refs:
                    self.refs.set_contains(object_id, refs)
                    self.store.put(object_id, StoredValue(kind, payload, refs))
                else:  # every ref to the result is gone already
                    for ref_id, owner in refs:
                        self.refs.add_hold(ref_id, owner)
                        actions += self.refs.remove_hold(ref_id)
                    if kind == ValueKind.SHARED:
                        self.node.send(FreeObjects([object_id]))
        self._apply_actions(actions)

    # --- objects: reading ----------------------------------------------------------------------

    def local_value(self, object_id: bytes, owner: str | None) -> StoredValue | None:
        """The value if this process owns it and has it now (any thread)."""
        if owner == self.address:
            return self.store.get(object_id)
        return None

    async def fetch(self, object_id: bytes, owner: str | None) -> StoredValue:
        """The StoredValue of an object, waiting until it exists. Never raises."""
        if owner == self.address:
            value = self.store.get(object_id)
            if value is not None:
                return value
            if object_id not in self.refs:
                return _error_value(ObjectLostError(object_id.hex(), "The object was freed."))
            return await self.store.wait(object_id)
        if not owner:
            return _error_value(
                ObjectLostError(
                    object_id.hex(),
                    "Its owner is unknown: the ObjectRef was not created by this "
                    "minray session (was minray restarted?).",
                )
            )
        try:
            conn = await self.peer(owner)
        except OSError:
            return _error_value(OwnerDiedError(object_id.hex()))
        request = conn.request(GetObject(object_id, self.address))
        try:
            reply = await asyncio.shield(request)
        except ConnectionLost:
            return _error_value(OwnerDiedError(object_id.hex()))
        except asyncio.CancelledError:
            # nobody wants the value any more, but the owner counts us as a borrower of the
            # refs inside it until we say otherwise
            request.add_done_callback(lambda f: self._drop_reply(f, owner))
            raise
        self._take_grants(reply.refs, owner)
        return StoredValue(reply.kind, reply.payload, reply.refs)

    def _drop_reply(self, request: asyncio.Future, owner: str) -> None:
        if not request.cancelled() and request.exception() is None and request.result().refs:
            refs = request.result().refs
            self._take_grants(refs, owner)
            self.release_holds(refs)

    def _release_if_remote(self, value: StoredValue, owner: str | None) -> None:
        if owner != self.address and value.refs:
            self.release_holds(value.refs)

    def deserialize(self, object_id: bytes, value: StoredValue) -> Any:
        """Turn a StoredValue into the user's value, or raise its error."""
        kind = value.kind
        if kind == ValueKind.INLINE:
            return serialization.from_inline(value.payload)
        if kind == ValueKind.SHARED:
            try:
                mem = self.segments.readable(value.payload[0])
            except FileNotFoundError:
                raise ObjectLostError(
                    object_id.hex(), "Its shared-memory segment is gone."
                ) from None
            return serialization.read_segment(mem)
        self._errors_seen.add(object_id)
        try:
            error = pickle.loads(value.payload)
        except Exception as e:
            raise UnserializableException(
                f"Failed to deserialize the exception of the task: {type(e).__name__}: {e}"
            ) from None
        if isinstance(error, RayTaskError):
            raise error.as_instanceof_cause()
        raise error

    def check_session(self, refs: list) -> None:
        """Refuse refs made by an earlier minray session of this process, as Ray does."""
        for ref in refs:
            if ref._worker is not self and ref._worker is not None:
                raise ValueError(
                    f"You are trying to access minray objects whose owner is unknown: {ref} "
                    "was created before minray.shutdown(), and its value went with that "
                    "session. Create the object again in this session."
                )

    def get(self, refs: list, timeout: float | None) -> list:
        self.check_session(refs)
        values: list = [None] * len(refs)
        missing = []
        for i, ref in enumerate(refs):
            value = self.local_value(ref._id, ref._owner)
            if value is None:
                missing.append(i)
            else:
                values[i] = value
        if missing:
            pairs = [(refs[i]._id, refs[i]._owner) for i in missing]
            fetched = self._wait_on_loop(self._fetch_all(pairs), timeout)
            for i, value in zip(missing, fetched):
                values[i] = value
        for ref, value in zip(refs, values):  # any error wins, as in Ray
            if value is not None and value.kind == ValueKind.ERROR:
                self._release_fetched(refs, values, missing)
                self.deserialize(ref._id, value)
        try:
            return [self.deserialize(ref._id, v) for ref, v in zip(refs, values)]
        finally:
            self._release_fetched(refs, values, missing)

    def _release_fetched(self, refs, values, missing) -> None:
        for i in missing:
            if values[i] is not None:
                self._release_if_remote(values[i], refs[i]._owner)
                values[i] = values[i]._replace(refs=[])

    def _wait_on_loop(self, coro, timeout: float | None):
        if timeout is not None and timeout < 0:
            timeout = None
        blocked = self.mode == "worker" and self.current_task is not None
        if blocked:
            self.call_soon(self.node.send, WorkerBlocked(True))
        if not self.alive:
            coro.close()
            raise RaySystemError(SHUT_DOWN)
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(max(timeout, 0.005) if timeout is not None else None)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise GetTimeoutError("Get timed out: some object(s) not ready.") from None
        except concurrent.futures.CancelledError:
            raise RaySystemError(SHUT_DOWN) from None
        finally:
            if blocked:
                self.call_soon(self.node.send, WorkerBlocked(False))

    async def _fetch_all(self, pairs: list) -> list:
        """Fetch values; return early (others None) as soon as one is an error."""
        results: list = [None] * len(pairs)
        tasks = [asyncio.ensure_future(self.fetch(oid, owner)) for oid, owner in pairs]
        remaining = len(tasks)
        done_event = asyncio.Event()

        def on_done(i, task):
            nonlocal remaining
            remaining -= 1
            if task.cancelled():
                return
            value = task.result()
            if done_event.is_set():  # nobody will read it: give its refs back
                self._release_if_remote(value, pairs[i][1])
                return
            results[i] = value
            if remaining == 0 or value.kind == ValueKind.ERROR:
                done_event.set()

        for i, task in enumerate(tasks):
            task.add_done_callback(lambda t, i=i: on_done(i, t))
        try:
            await done_event.wait()
        except asyncio.CancelledError:
            done_event.set()
            for task in tasks:
                task.cancel()
            for i, value in enumerate(results):
                if value is not None:
                    self._release_if_remote(value, pairs[i][1])
            raise
        return results

    def wait(self, refs: list, num_returns: int, timeout: float | None) -> tuple[list, list]:
        self.check_session(refs)
        ready = {i for i, r in enumerate(refs) if self.local_value(r._id, r._owner) is not None}
        all_local = all(r._owner == self.address for r in refs)
        if len(ready) < num_returns and not (timeout == 0 and all_local):
            pending = [i for i in range(len(refs)) if i not in ready]
            pairs = [(refs[i]._id, refs[i]._owner) for i in pending]
            if timeout == 0:
                timeout = 0.005  # a moment for other owners to answer
            done = self._wait_on_loop(
                self._wait_ready(pairs, num_returns - len(ready), timeout), None
            )
            ready.update(pending[j] for j in done)
        chosen = sorted(ready)[:num_returns]
        chosen_set = set(chosen)
        return ([refs[i] for i in chosen], [r for i, r in enumerate(refs) if i not in chosen_set])

    async def _wait_ready(self, pairs: list, need: int, timeout: float | None) -> list:
        """Indices of ``pairs`` that became ready, once ``need`` did or at the timeout."""
        done: list = []
        enough = asyncio.Event()

        def mark(i):
            done.append(i)
            if len(done) >= need:
                enough.set()

        def on_fetched(i, task):
            if not task.cancelled():
                self._release_if_remote(task.result(), pairs[i][1])
                mark(i)

        # our own objects: a callback each from the memory store; others: ask their owners
        callbacks, tasks = [], []
        for i, (object_id, owner) in enumerate(pairs):
            if owner == self.address and object_id in self.refs:
                callback = lambda _, i=i: mark(i)  # noqa: E731
                callbacks.append((object_id, callback))
                self.store.add_callback(object_id, callback)
            else:
                task = asyncio.ensure_future(self.fetch(object_id, owner))
                task.add_done_callback(lambda t, i=i: on_fetched(i, t))
                tasks.append(task)
        try:
            if need > 0:
                await asyncio.wait_for(enough.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            for object_id, callback in callbacks:
                self.store.remove_callback(object_id, callback)
            for task in tasks:
                task.cancel()
        return list(done)

    def future_of(self, ref: ObjectRef) -> concurrent.futures.Future:
        self.check_session([ref])
        result = _ValueFuture(self, ref)
        value = self.local_value(ref._id, ref._owner)
        if value is not None:
            result.set_result(value)
        else:
            self.call_soon(self._start_future, ref, result)
        return result

    def _start_future(self, ref: ObjectRef, result: _ValueFuture) -> None:
        task = self.loop.create_task(self.fetch(ref._id, ref._owner))
        task.add_done_callback(result.deliver_from)

    # --- handlers (loop thread) ---------------------------------------------------------------

    def handle_GetObject(self, conn: Connection, msg: GetObject):
        conn.info.setdefault("peer", msg.reader)
        value = self.store.get(msg.object_id)
        if value is not None:
            return self._object_reply(value, msg.reader)
        fut = self.loop.create_future()

        async def reply_when_ready():
            stored = await self.fetch(msg.object_id, self.address)
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
        busy = self.current_task is not None or self.submitter.has_work()
        return ExitReply(not holds_refs and not busy)

    def handle_SegmentsRemoved(self, conn: Connection, msg) -> None:
        self.segments.forget(msg.segments)

    def handle_PushTask(self, conn: Connection, msg):
        if self.executor is None:
            raise ValueError("this process is a driver; it does not run tasks")
        return self.executor.on_push(conn, msg)

    def handle_LogLines(self, conn: Connection, msg) -> None:
        if not self.log_to_driver:
            return
        out, err = sys.stdout, sys.stderr
        for pid, name, is_err, text in msg.lines:
            stream = err if is_err else out
            stream.write(f"\x1b[36m({name} pid={pid})\x1b[0m {text}\n")
        out.flush()
        err.flush()

    def handle_ResourcesInfeasible(self, conn: Connection, msg) -> None:
        need = {k: float(v) for k, v in msg.resources.items()}
        key = (msg.task_name, tuple(sorted(need.items())))
        if key in self._infeasible_warned:
            return
        self._infeasible_warned.add(key)
        missing = {k: v for k, v in need.items() if v > msg.available.get(k, 0)}
        logger.warning(
            "Task %r cannot be scheduled: no node has %s (it asks for %s; the cluster has %s). "
            "It stays pending until a node with these resources joins. Check the task's "
            "num_cpus/num_gpus/resources options, or start minray with the resources it needs "
            "(e.g. minray.init(num_gpus=1)). [Ray: No available node types can fulfill resource "
            "request %s]",
            msg.task_name,
            missing or need,
            need,
            msg.available,
            need,
        )


class _ValueFuture(concurrent.futures.Future):
    """A Future of an object's value that deserializes it on the thread that asks.

    The loop thread only stores the StoredValue; ``result()``/``exception()``
    (called by ``await ref`` on the user's event loop, or by user code) turn it
    into the value, so a large unpickle never stalls the loop thread.
    """

    def __init__(self, worker: CoreWorker, ref: ObjectRef):
        super().__init__()
        self._worker = worker
        self._ref = ref  # keeps the object alive while someone waits for it
        self._outcome: tuple | None = None
        self._outcome_lock = threading.Lock()

    def deliver_from(self, task: asyncio.Task) -> None:
        """Done-callback of the fetch task: hand its StoredValue over."""
        try:
            if task.cancelled():  # the CoreWorker is stopping
                self.set_exception(RaySystemError(SHUT_DOWN))
            else:
                self.set_result(task.result())
        except concurrent.futures.InvalidStateError:  # the future was cancelled meanwhile
            if not task.cancelled():
                self._worker._release_if_remote(task.result(), self._ref._owner)

    def _materialize(self) -> tuple:
        with self._outcome_lock:
            if self._outcome is None:
                stored = super().result()
                try:
                    self._outcome = (True, self._worker.deserialize(self._ref._id, stored))
                except BaseException as e:  # noqa: B036 - the object's error, for the caller
                    self._outcome = (False, e)
                finally:
                    self._worker._release_if_remote(stored, self._ref._owner)
            return self._outcome

    def result(self, timeout=None):
        super().result(timeout)
        ok, value = self._materialize()
        if not ok:
            raise value
        return value

    def exception(self, timeout=None):
        error = super().exception(timeout)
        if error is not None:
            return error
        ok, value = self._materialize()
        return None if ok else value


def _error_value(error: BaseException) -> StoredValue:
    return StoredValue(ValueKind.ERROR, pickle.dumps(error), [])


def _remote_error(e: RemoteError) -> Exception:
    from .. import exceptions

    cls = getattr(exceptions, e.error, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(str(e))
        except TypeError:
            pass
    return RaySystemError(f"{e.error}: {e}")
