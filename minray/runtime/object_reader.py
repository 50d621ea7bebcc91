"""Reading objects: ``get``, ``wait``, ``ref.future()`` and ``await ref``.

``ObjectReader`` is the part of a CoreWorker (``worker.objects``) that turns
refs into values. A value this process owns and already has is read on the
caller's thread without touching the loop; anything else is fetched on the
loop thread (from the memory store, or with GetObject from its owner) and
deserialized on the thread that asked. A worker blocked here tells the node,
which lends its CPU to other tasks meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import mmap
import pickle
import threading
from typing import TYPE_CHECKING, Any

from .. import serialization
from ..exceptions import (
    GetTimeoutError,
    ObjectLostError,
    RaySystemError,
    RayTaskError,
    UnserializableException,
    error_from_reply,
)
from ..object_ref import REF_OWNER, REF_WORKER, ObjectRef
from ..protocol.connection import ConnectionLost, RemoteError
from ..protocol.messages import GetObject, PullObject, RestoreObject, ValueKind, WorkerBlocked
from .dead_owners import DeadOwners
from .lost_objects import LocationLost
from .memory_store import StoredValue
from .task_interrupt import interruptible

if TYPE_CHECKING:
    from .core_worker import CoreWorker

#: times a reader asks the owner to rebuild a lost object before it gives up
RECOVERY_ATTEMPTS = 3

SHUT_DOWN = "minray was shut down while this call was waiting; call minray.init() to start again"


logger = logging.getLogger("minray")


class ObjectReader:
    def __init__(self, worker: CoreWorker):
        self.worker = worker
        self._sleepers: set[_Countdown] = set()
        self._warned_async_get = False
        self.dead_owners = DeadOwners(worker)  #: who an unreachable owner was

    def local_value(self, object_id: bytes, owner: str | None) -> StoredValue | None:
        """The value if this process owns it and has it now (any thread)."""
        if owner == self.worker.address:
            return self.worker.store.get(object_id)
        return None

    async def fetch(self, object_id: bytes, owner: str | None) -> StoredValue:
        """The StoredValue of an object, waiting until it exists. Never raises."""
        if owner == self.worker.address:
            value = self.worker.store.get(object_id)
            if value is not None:
                return value
            if object_id not in self.worker.refs:
                return _freed(object_id)
            return await self.worker.store.wait(object_id)
        if not owner:
            return _error_value(
                ObjectLostError(
                    object_id.hex(),
                    "Its owner is unknown: the ObjectRef was not created by this "
                    "minray session (was minray restarted?).",
                )
            )
        try:
            conn = await self.worker.peer(owner)
        except OSError:
            return _error_value(await self.dead_owners.error(object_id, owner))
        request = conn.request(GetObject(object_id, self.worker.address))
        try:
            reply = await asyncio.shield(request)
        except ConnectionLost:
            return _error_value(await self.dead_owners.error(object_id, owner))
        except asyncio.CancelledError:
            # nobody wants the value any more, but the owner counts us as a borrower of the
            # refs inside it until we say otherwise
            request.add_done_callback(lambda f: self._drop_reply(f, owner))
            raise
        self.worker.take_grants(reply.refs, owner)
        return StoredValue(reply.kind, reply.payload, reply.refs)

    def _drop_reply(self, request: asyncio.Future, owner: str) -> None:
        if not request.cancelled() and request.exception() is None and request.result().refs:
            refs = request.result().refs
            self.worker.take_grants(refs, owner)
            self.worker.release_holds(refs)

    def release_if_remote(self, value: StoredValue, owner: str | None) -> None:
        if owner != self.worker.address and value.refs:
            self.worker.release_holds(value.refs)

    def deserialize(self, object_id: bytes, value: StoredValue) -> Any:
        """Turn a StoredValue into the user's value, or raise its error."""
        kind = value.kind
        if kind == ValueKind.INLINE:
            return serialization.from_inline(value.payload)
        if kind == ValueKind.SHARED:
            return serialization.read_segment(self.map_shared(value.payload))
        self.worker.error_seen(object_id)
        try:
            error = pickle.loads(value.payload)
        except Exception as e:
            raise UnserializableException(
                f"Failed to deserialize the exception of the task: {type(e).__name__}: {e}"
            ) from None
        if isinstance(error, RayTaskError):
            raise error.as_instanceof_cause()
        raise error

    def map_shared(self, payload: list) -> mmap.mmap:
        """A read-only mapping of a shared object (payload ``[segment, size, node_id,
        object_id]``); one that another node holds is copied to this node first, one
        that was spilled to disk is restored first."""
        name, size, node_id, object_id = payload
        worker = self.worker
        if node_id != worker.node_id:
            reply = self._call_node(PullObject(object_id, name, size, node_id), payload)
            name, node_id = reply.segment, worker.node_id
        try:
            return worker.segments.readable(name, node_id)
        except FileNotFoundError:
            pass  # spilled to disk (or lost): the node knows which
        reply = self._call_node(RestoreObject(object_id, name), [name, size, node_id, object_id])
        try:
            return worker.segments.readable(reply.segment, node_id, pinned=True)
        except FileNotFoundError:
            raise LocationLost(
                object_id.hex(), "Its shared-memory segment is gone.", node_id.hex()
            ) from None

    def _call_node(self, msg, payload: list):
        """Ask the node to copy or restore the object at ``payload``; its errors as the
        user sees them (a copy that cannot be had: LocationLost, for the owner to rebuild)."""
        if self.worker.on_loop_thread():  # call_node would wait on this very thread
            raise RaySystemError(f"{type(msg).__name__} of a shared object on the loop thread")
        try:
            return self.worker.call_node(msg)
        except RemoteError as e:
            if e.error in ("ObjectStoreFullError", "OutOfDiskError"):
                raise error_from_reply(e.error, str(e)) from None
            raise LocationLost(payload[3].hex(), str(e), payload[2].hex()) from None

    def check_session(self, refs: list) -> None:
        """Refuse refs made by an earlier minray session of this process, as Ray does."""
        if set(map(REF_WORKER, refs)) <= {self.worker, None}:  # (the usual case, at C speed)
            return
        for ref in refs:
            if ref._worker is not self.worker and ref._worker is not None:
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
            self._warn_if_blocking_an_event_loop()
        if missing and all(refs[i]._owner == self.worker.address for i in missing):
            ids = [refs[i]._id for i in missing]
            self._wait_for_own(ids, timeout)
            for i, object_id in zip(missing, ids):  # None: still pending (another failed)
                values[i] = self.local_value(object_id, self.worker.address)
                if values[i] is None and object_id not in self.worker.refs:
                    values[i] = _freed(object_id)
            missing = []  # nothing was fetched from other processes
        elif missing:
            pairs = [(refs[i]._id, refs[i]._owner) for i in missing]
            fetched = self._wait_on_loop(self._fetch_all(pairs), timeout)
            for i, value in zip(missing, fetched):
                values[i] = value
        for ref, value in zip(refs, values):  # any error wins, as in Ray
            if value is not None and value.kind == ValueKind.ERROR:
                self._release_fetched(refs, values, missing)
                self.deserialize(ref._id, value)
        try:
            try:
                return [self.deserialize(ref._id, v) for ref, v in zip(refs, values)]
            except LocationLost:  # a copy is gone: again, asking owners to recover it
                return [self.read(ref, values, i) for i, ref in enumerate(refs)]
        finally:
            self._release_fetched(refs, values, missing)

    def read(self, ref: ObjectRef, values: list, i: int) -> Any:
        """Deserialize ``values[i]``, the value of ``ref``. If its shared-memory copy is
        lost, the owner is told (it rebuilds the object) and the value fetched again,
        replacing ``values[i]`` (the caller releases what ``values[i]`` holds)."""
        for _ in range(RECOVERY_ATTEMPTS - 1):
            try:
                return self.deserialize(ref._id, values[i])
            except LocationLost as e:
                if self.worker.on_loop_thread():
                    raise
                node_id = bytes.fromhex(e.node_id_hex)
                again = self._wait_on_loop(self._recover(ref._id, ref._owner, node_id), None)
                self.release_if_remote(values[i], ref._owner)
                values[i] = again
        return self.deserialize(ref._id, values[i])  # the last try: its error is the user's

    async def _recover(self, object_id: bytes, owner: str, node_id: bytes) -> StoredValue:
        try:
            await self.worker.report_lost(object_id, owner, node_id)
        except (OSError, ConnectionError, RemoteError) as e:
            logger.debug("could not report lost object %s: %s", object_id.hex(), e)
        return await self.fetch(object_id, owner)  # waits for the rebuilt value

    def _warn_if_blocking_an_event_loop(self) -> None:
        """get() in an async actor blocks every call of that actor: say so once, as Ray does."""
        executor = self.worker.executor
        actor = executor.actor if executor is not None else None
        if actor is None or actor.mode != "async" or self._warned_async_get:
            return
        if threading.current_thread() is threading.main_thread():
            self._warned_async_get = True
            logger.warning(
                "Using blocking minray.get inside an async actor method blocks the actor's "
                "event loop: its other calls wait until it returns. Use `await ref` (or "
                "`await asyncio.gather(*refs)`) instead."
            )

    def _release_fetched(self, refs, values, missing) -> None:
        for i in missing:
            if values[i] is not None:
                self.release_if_remote(values[i], refs[i]._owner)
                values[i] = values[i]._replace(refs=[])

    def _wait_for_own(self, object_ids: list, timeout: float | None) -> None:
        """Block until our own pending objects arrive (one failing is enough).

        The fast path of ``get(f.remote())``: this thread puts its callbacks in the
        memory store and the loop thread's arrival wakes it, with no other hand-off.
        """
        worker = self.worker
        arrivals = _Countdown(len(object_ids))

        def on_arrival(object_id: bytes) -> None:
            arrivals.arrived(worker.store.get(object_id))

        if not worker.alive:
            raise RaySystemError(SHUT_DOWN)
        self._sleepers.add(arrivals)
        try:
            for object_id in object_ids:
                if object_id in worker.refs:
                    worker.store.add_callback(object_id, on_arrival)
                else:  # freed already: get() reports it
                    arrivals.arrived(_freed(object_id))
            with self._blocked_in_get():
                ready = arrivals.wait(timeout)
        finally:
            self._sleepers.discard(arrivals)
            if arrivals.left > 0:  # the callbacks of objects still pending stay behind
                for object_id in object_ids:
                    worker.store.remove_callback(object_id, on_arrival)
        if arrivals.stopped:
            raise RaySystemError(SHUT_DOWN)
        if not ready:
            raise GetTimeoutError("Get timed out: some object(s) not ready.")

    def wake_all(self) -> None:
        """The CoreWorker is stopping: wake threads in ``_wait_for_own`` with an error."""
        for arrivals in list(self._sleepers):
            arrivals.stop()

    def _blocked_in_get(self) -> contextlib.AbstractContextManager:
        """A task waiting in get/wait lends its CPU to the node meanwhile."""
        worker = self.worker
        if worker.mode == "worker" and worker.current_task is not None:
            return self._lending_cpu()
        return _NOTHING_TO_LEND

    @contextlib.contextmanager
    def _lending_cpu(self):
        worker = self.worker
        worker.call_soon(worker.node.send, WorkerBlocked(True))
        try:
            yield
        finally:
            worker.call_soon(worker.node.send, WorkerBlocked(False))

    def _wait_on_loop(self, coro, timeout: float | None):
        if timeout is not None and timeout < 0:
            timeout = None
        if not self.worker.alive:
            coro.close()
            raise RaySystemError(SHUT_DOWN)
        with self._blocked_in_get():
            fut = asyncio.run_coroutine_threadsafe(coro, self.worker.loop)
            try:
                return fut.result(max(timeout, 0.005) if timeout is not None else None)
            except concurrent.futures.TimeoutError:
                fut.cancel()
                raise GetTimeoutError("Get timed out: some object(s) not ready.") from None
            except concurrent.futures.CancelledError:
                raise RaySystemError(SHUT_DOWN) from None
            except BaseException:  # noqa: B036 - e.g. KeyboardInterrupt: the task was cancelled
                fut.cancel()  # stop waiting on the loop too (what it fetched is given back)
                raise

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
                self.release_if_remote(value, pairs[i][1])
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
                    self.release_if_remote(value, pairs[i][1])
            raise
        return results

    def wait(self, refs: list, num_returns: int, timeout: float | None) -> tuple[list, list]:
        self.check_session(refs)
        all_local = set(map(REF_OWNER, refs)) == {self.worker.address}
        if all_local:
            ready = self._wait_own(refs, num_returns, timeout)
        else:
            ready = {i for i, r in enumerate(refs) if self.local_value(r._id, r._owner) is not None}
        if len(ready) < num_returns and not all_local:
            pending = [i for i in range(len(refs)) if i not in ready]
            pairs = [(refs[i]._id, refs[i]._owner) for i in pending]
            if timeout == 0:
                timeout = 0.005  # a moment for other owners to answer
            done = self._wait_on_loop(
                self._wait_ready(pairs, num_returns - len(ready), timeout), None
            )
            ready.update(pending[j] for j in done)
        return _split(refs, ready, num_returns)

    def _wait_own(self, refs: list, num_returns: int, timeout: float | None) -> set:
        """wait() on refs this process owns: one arrival watcher, not a callback per ref."""
        store, counted = self.worker.store, self.worker.refs
        ready: set = set()
        pending: dict = {}
        for i, ref in enumerate(refs):
            if store.get(ref._id) is not None or ref._id not in counted:  # (freed: get says so)
                ready.add(i)
                if len(ready) == num_returns:  # the first ready in order: what wait returns
                    return ready
            else:
                pending[ref._id] = i
        if len(ready) >= num_returns or timeout == 0:
            return ready
        arrivals = _Countdown(num_returns - len(ready))

        def watcher(object_id: bytes) -> None:  # loop thread, or this one (the re-check)
            i = pending.pop(object_id, None)
            if i is not None:
                ready.add(i)
                arrivals.arrived(_ANY)

        store.arrival_watchers.add(watcher)
        self._sleepers.add(arrivals)
        try:
            for object_id in list(pending):  # arrived before the watcher was in place
                if store.get(object_id) is not None:
                    watcher(object_id)
            with self._blocked_in_get():
                arrivals.wait(timeout)
        finally:
            store.arrival_watchers.discard(watcher)
            self._sleepers.discard(arrivals)
        if arrivals.stopped:
            raise RaySystemError(SHUT_DOWN)
        return set(ready)

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
                self.release_if_remote(task.result(), pairs[i][1])
                mark(i)

        # our own objects: a callback each from the memory store; others: ask their owners
        callbacks, tasks = [], []
        for i, (object_id, owner) in enumerate(pairs):
            if owner == self.worker.address and object_id in self.worker.refs:
                callback = lambda _, i=i: mark(i)  # noqa: E731
                callbacks.append((object_id, callback))
                self.worker.store.add_callback(object_id, callback)
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
                self.worker.store.remove_callback(object_id, callback)
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
            self.worker.call_soon(self._start_future, ref, result)
        return result

    def _start_future(self, ref: ObjectRef, result: _ValueFuture) -> None:
        task = self.worker.loop.create_task(self.fetch(ref._id, ref._owner))
        task.add_done_callback(result.deliver_from)


class _ValueFuture(concurrent.futures.Future):
    """A Future of an object's value that deserializes it on the thread that asks.

    The loop thread only stores the StoredValue; ``result()``/``exception()``
    (called by ``await ref`` on the user's event loop, or by user code) turn it
    into the value, so a large unpickle never stalls the loop thread.
    """

    def __init__(self, reader: ObjectReader, ref: ObjectRef):
        super().__init__()
        self._reader = reader
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
                self._reader.release_if_remote(task.result(), self._ref._owner)

    def _materialize(self) -> tuple:
        with self._outcome_lock:
            if self._outcome is None:
                stored = [super().result()]
                try:
                    self._outcome = (True, self._reader.read(self._ref, stored, 0))
                except BaseException as e:  # noqa: B036 - the object's error, for the caller
                    self._outcome = (False, e)
                finally:
                    self._reader.release_if_remote(stored[0], self._ref._owner)
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


#: what a driver's get/wait lends while it waits: nothing
_NOTHING_TO_LEND = contextlib.nullcontext()


class _Countdown:
    """Counts arrivals (from any thread); wakes the waiting thread at zero or on an error.

    The waiter sleeps on a plain lock, the cheapest wake-up Python has.
    """

    __slots__ = ("left", "stopped", "_count_lock", "_sleep", "_woken")

    def __init__(self, count: int):
        self.left = count
        self.stopped = False
        self._count_lock = threading.Lock()
        self._sleep = threading.Lock()
        self._sleep.acquire()  # held until the wake-up
        self._woken = False

    def arrived(self, value: StoredValue | None) -> None:
        with self._count_lock:
            self.left -= 1
            if self.left <= 0 or value is None or value.kind == ValueKind.ERROR:
                self._wake()

    def stop(self) -> None:
        """The CoreWorker is stopping: wake the waiter, which raises."""
        with self._count_lock:
            self.stopped = True
            self._wake()

    def _wake(self) -> None:
        if not self._woken:
            self._woken = True
            self._sleep.release()

    @interruptible
    def wait(self, timeout: float | None) -> bool:
        """Sleep until woken (True) or for ``timeout`` seconds (False); None or < 0: forever."""
        if timeout is None or timeout < 0:
            return self._sleep.acquire()
        return self._sleep.acquire(timeout=timeout)


def _split(refs: list, ready: set, num_returns: int) -> tuple[list, list]:
    """wait()'s answer: the first ``num_returns`` ready refs in the order given, and the
    others in order (the tail after the last one chosen is copied as one slice)."""
    chosen = sorted(ready)[:num_returns]
    if not chosen:
        return [], list(refs)
    end = chosen[-1] + 1
    chosen_set = set(chosen)
    rest = [r for i, r in enumerate(refs[:end]) if i not in chosen_set]
    return [refs[i] for i in chosen], rest + refs[end:]


#: stands for "an object arrived" where a _Countdown needs a value that is not an error
_ANY = StoredValue(ValueKind.INLINE, [b""], [])


def _freed(object_id: bytes) -> StoredValue:
    return _error_value(ObjectLostError(object_id.hex(), "The object was freed."))


def _error_value(error: BaseException) -> StoredValue:
    return StoredValue(ValueKind.ERROR, pickle.dumps(error), [])
