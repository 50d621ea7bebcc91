"""``Pool``: the stdlib ``multiprocessing.Pool`` API, run by minray actors.

Each "process" of the pool is an actor (``PoolActor``) holding one CPU. Work is
cut into chunks; a chunk is one actor call, ``run_batch(func, mode, items)``,
which calls the user's function on every item and returns the values plus the
exceptions it caught, so one failing item does not lose its neighbours.

One dispatcher thread per pool owns all scheduling state. Callers only put
events on its queue (a new job, close, terminate); each actor call's future
puts a "done" event when it completes. The dispatcher hands each chunk to the
actor expected to be free soonest, delivers results, and runs the user's
callbacks, like the stdlib's result-handler thread. It also replaces actors
that reached ``maxtasksperchild`` calls or died.

How many calls may wait at one actor adapts to how long calls run (see
``PIPELINE_DEPTHS``): one while that is unknown or calls are long, so no work
queues behind a slow call while another actor is free (the stdlib's workers
pull from a shared queue and get the same effect); several when calls are
short, so actors do not idle during the round trip to the driver.

Built only on minray's public API.
"""

from __future__ import annotations

import collections
import logging
import pickle
import queue
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from multiprocessing import TimeoutError
from multiprocessing.pool import MaybeEncodingError, RemoteTraceback
from typing import Any

import cloudpickle

import minray
from minray.exceptions import RayActorError

logger = logging.getLogger("minray.util.multiprocessing")

#: how each item of a chunk is passed to the function
MAP, STARMAP, APPLY = 0, 1, 2

#: (average call seconds below which, calls allowed at one actor): 1 above them all
PIPELINE_DEPTHS = ((0.005, 8), (0.05, 2))

#: a map() without chunksize cuts its items into this many chunks per process (as the stdlib)
CHUNKS_PER_PROCESS = 4

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"


# --- the actor ----------------------------------------------------------------------------


def _portable_error(exc: BaseException) -> tuple[BaseException, str]:
    """The exception and its formatted traceback, replaced by a stand-in if it cannot pickle."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickle.loads(cloudpickle.dumps(exc))
    except Exception as reason:
        exc = MaybeEncodingError(reason, exc)
    return exc, text


def _rebuild_error(exc: BaseException, text: str) -> BaseException:
    """Attach the remote traceback as ``__cause__``, as the stdlib pool does."""
    exc.__cause__ = RemoteTraceback(f'\n"""\n{text}"""')
    return exc


class PoolActor:
    """One process of a Pool: runs the initializer once, then batches of calls."""

    def __init__(self, initializer: Callable | None = None, initargs: tuple | None = None):
        self._init_error = None
        if initializer is not None:
            try:
                initializer(*(initargs or ()))
            except Exception as exc:
                self._init_error = _portable_error(exc)

    def ping(self):
        """None when the initializer ran fine, else (exception, traceback text)."""
        return self._init_error

    def run_batch(self, func: Callable, mode: int, items: list) -> tuple[list, dict | None, float]:
        """Call ``func`` on each item: the values, {offset: error} (or None), and seconds taken."""
        if self._init_error is not None:
            return [None] * len(items), dict.fromkeys(range(len(items)), self._init_error), 0.0
        began = time.perf_counter()
        values = []
        errors = None
        for offset, item in enumerate(items):
            try:
                if mode == MAP:
                    value = func(item)
                elif mode == STARMAP:
                    value = func(*item)
                else:
                    value = func(*item[0], **item[1])
            except Exception as exc:
                value = None
                if errors is None:
                    errors = {}
                errors[offset] = _portable_error(exc)
            values.append(value)
        return values, errors, time.perf_counter() - began


_actor_class = None
_actor_class_lock = threading.Lock()


def _pool_actor_class():
    global _actor_class
    with _actor_class_lock:
        if _actor_class is None:
            _actor_class = minray.remote(PoolActor)
        return _actor_class


# --- results ------------------------------------------------------------------------------


class _Job:
    """Work the dispatcher hands out in chunks (dispatcher-thread side of a result)."""

    func: Callable
    mode: int

    def next_chunk(self) -> tuple[int, list] | None:
        """(index of the first item, items) of the next chunk, or None when all are out."""
        raise NotImplementedError

    def deliver(self, start: int, values: list, errors: dict | None) -> None:
        raise NotImplementedError

    def fail(self, start: int, count: int, exc: BaseException) -> None:
        """The whole chunk failed (e.g. its actor died)."""
        raise NotImplementedError

    def abort(self, exc: BaseException) -> None:
        """The pool was terminated: no more chunks; outstanding results raise ``exc``."""
        raise NotImplementedError

    def abort_chunk(self, start: int, count: int, exc: BaseException) -> None:
        """The pool was terminated while this chunk ran (no callbacks are called)."""
        self.fail(start, count, exc)


def _run_callback(callback: Callable, value: Any) -> None:
    try:
        callback(value)
    except Exception:
        logger.exception("A Pool callback raised an exception (ignored).")


class AsyncResult(_Job):
    """The result of ``apply_async``/``map_async``/``starmap_async`` (stdlib's ApplyResult)."""

    def __init__(
        self,
        func: Callable,
        mode: int,
        items: list,
        chunksize: int,
        callback: Callable | None = None,
        error_callback: Callable | None = None,
        single: bool = False,
    ):
        self.func = func
        self.mode = mode
        self._items = items
        self._chunksize = chunksize
        self._callback = callback
        self._error_callback = error_callback
        self._single = single
        self._event = threading.Event()
        self._next_start = 0
        self._chunks_left = -(-len(items) // chunksize) if items else 0
        self._values: list | None = [None] * len(items)
        self._error: BaseException | None = None
        self._error_index = -1
        self._success: bool | None = None
        self._value: Any = None
        if not items:
            self._finish(callbacks=True)

    # caller side
    def ready(self) -> bool:
        return self._event.is_set()

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return bool(self._success)

    def wait(self, timeout: float | None = None) -> None:
        self._event.wait(timeout)

    def get(self, timeout: float | None = None) -> Any:
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError
        if self._success:
            return self._value
        raise self._value

    # dispatcher side
    def next_chunk(self):
        start = self._next_start
        if self._items is None or start >= len(self._items):
            return None
        self._next_start = start + self._chunksize
        return start, self._items[start : self._next_start]

    def _note_error(self, index: int, exc: BaseException) -> None:
        if self._error is None or index < self._error_index:
            self._error, self._error_index = exc, index

    def deliver(self, start, values, errors):
        if self._event.is_set():
            return
        if errors:
            offset = min(errors)
            self._note_error(start + offset, errors[offset])
        elif self._error is None:
            self._values[start : start + len(values)] = values
        self._chunk_done()

    def fail(self, start, count, exc):
        if self._event.is_set():
            return
        self._note_error(start, exc)
        self._chunk_done()

    def abort(self, exc):
        if self._event.is_set():
            return
        self._note_error(self._next_start, exc)
        self._finish(callbacks=False)

    def abort_chunk(self, start, count, exc):
        self.abort(exc)

    def _chunk_done(self) -> None:
        self._chunks_left -= 1
        if self._chunks_left == 0:
            self._finish(callbacks=True)

    def _finish(self, callbacks: bool) -> None:
        if self._error is None:
            self._success = True
            self._value = self._values[0] if self._single else self._values
            callback = self._callback
        else:
            self._success = False
            self._value = self._error
            callback = self._error_callback
        self._items = self._values = self._error = None
        self._callback = self._error_callback = None
        self.func = None
        if callbacks and callback is not None:
            _run_callback(callback, self._value)
        self._event.set()


#: names the stdlib uses for the same classes
ApplyResult = MapResult = AsyncResult


class _IMapBase(_Job):
    """An iterator over results as they come (imap / imap_unordered); pulls items lazily."""

    def __init__(self, func: Callable, mode: int, iterable: Iterable, chunksize: int):
        self.func = func
        self.mode = mode
        self._iterator = iter(iterable)
        self._chunksize = chunksize
        self._cond = threading.Condition()
        self._next_start = 0  # dispatcher: index of the next item to pull
        self._exhausted = False
        self._length: int | None = None  # known once the input is exhausted

    # caller side
    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def next(self, timeout: float | None = None) -> Any:
        with self._cond:
            if not self._cond.wait_for(self._has_next, timeout):
                raise TimeoutError
            ok, value = self._take()
        if ok:
            return value
        raise value

    def _has_next(self) -> bool:
        raise NotImplementedError

    def _take(self) -> tuple[bool, Any]:
        """The next outcome; raises StopIteration at the end (called with the lock held)."""
        raise NotImplementedError

    def _store(self, index: int, outcome: tuple[bool, Any]) -> None:
        raise NotImplementedError

    # dispatcher side
    def next_chunk(self):
        if self._exhausted:
            return None
        start = self._next_start
        items = []
        iterator = self._iterator
        try:
            for _ in range(self._chunksize):
                items.append(next(iterator))
        except StopIteration:
            self._end(start + len(items))
        except Exception as exc:  # the input iterable itself raised: report it in its place
            index = start + len(items)
            with self._cond:
                self._store(index, (False, exc))
            self._end(index + 1)
        if not items:
            return None
        self._next_start = start + len(items)
        return start, items

    def _end(self, length: int) -> None:
        self._exhausted = True
        self._iterator = None
        with self._cond:
            self._length = length
            self._cond.notify_all()

    def deliver(self, start, values, errors):
        with self._cond:
            for offset, value in enumerate(values):
                if errors and offset in errors:
                    self._store(start + offset, (False, errors[offset]))
                else:
                    self._store(start + offset, (True, value))
            self._cond.notify_all()

    def fail(self, start, count, exc):
        with self._cond:
            for index in range(start, start + count):
                self._store(index, (False, exc))
            self._cond.notify_all()

    def abort(self, exc):
        if not self._exhausted:
            with self._cond:
                self._store(self._next_start, (False, exc))
            self._end(self._next_start + 1)


class IMapIterator(_IMapBase):
    """``imap``: results in input order."""

    def __init__(self, *args):
        super().__init__(*args)
        self._outcomes: dict[int, tuple[bool, Any]] = {}
        self._index = 0  # caller: the next index to yield

    def _has_next(self):
        return self._index in self._outcomes or (
            self._length is not None and self._index >= self._length
        )

    def _take(self):
        outcome = self._outcomes.pop(self._index, None)
        if outcome is None:
            raise StopIteration
        self._index += 1
        return outcome

    def _store(self, index, outcome):
        if self._length is None or index < self._length:
            self._outcomes[index] = outcome


class IMapUnorderedIterator(_IMapBase):
    """``imap_unordered``: results in the order they complete."""

    def __init__(self, *args):
        super().__init__(*args)
        self._outcomes: collections.deque = collections.deque()
        self._yielded = 0

    def _has_next(self):
        return bool(self._outcomes) or (self._length is not None and self._yielded >= self._length)

    def _take(self):
        if not self._outcomes:
            raise StopIteration
        self._yielded += 1
        return self._outcomes.popleft()

    def _store(self, index, outcome):
        self._outcomes.append(outcome)


# --- the dispatcher -----------------------------------------------------------------------


class _Actor:
    __slots__ = ("handle", "calls", "tasks", "retiring", "busy_since")

    def __init__(self, handle):
        self.handle = handle
        self.calls = 0  # actor calls sent and not yet answered
        self.busy_since = 0.0  # when the call it runs now started (about)
        self.tasks = 0  # actor calls sent in its life (for maxtasksperchild)
        self.retiring = False  # takes no new calls; replaced once its calls are answered


class _Dispatcher:
    """The pool's scheduling thread (see the module docstring)."""

    def __init__(self, make_actor: Callable, handles: list, maxtasksperchild: int | None):
        self._make_actor = make_actor
        self._maxtasks = maxtasksperchild
        self._actors = [_Actor(handle) for handle in handles]
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._work: collections.deque[_Job] = collections.deque()  # jobs with chunks to send
        self._calls: dict = {}  # future -> (actor, job, start, count)
        self._closing = False
        self._call_seconds: float | None = None  # moving average of how long calls run
        self._depth = 1
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name="minray-pool-dispatcher", daemon=True)
        self.thread.start()

    # called from any thread
    def submit(self, job: _Job) -> None:
        self._events.put(("job", job))

    def close(self) -> None:
        self._events.put(("close",))

    def terminate(self) -> None:
        self._events.put(("terminate",))

    def _call_done(self, future) -> None:  # on minray's loop thread: hand over, nothing more
        self._events.put(("done", future))

    # the dispatcher thread
    def _run(self) -> None:
        try:
            while True:
                self._fill()
                if self._closing and not self._work and not self._calls:
                    self._stop_actors()
                    return
                event = self._events.get()
                kind = event[0]
                if kind == "done":
                    self._on_done(event[1])
                elif kind == "job":
                    self._work.append(event[1])
                elif kind == "close":
                    self._closing = True
                else:
                    self._terminate(RuntimeError("the pool was terminated before this finished"))
                    return
        except BaseException as exc:  # a bug here must not leave callers waiting forever
            logger.exception("The Pool's dispatcher thread failed.")
            self._terminate(exc)
        finally:
            self.finished.set()

    def _fill(self) -> None:
        work = self._work
        while work:
            actor = self._idlest_actor()
            if actor is None:
                return
            job = work[0]
            chunk = job.next_chunk()
            if chunk is None:
                work.popleft()
                continue
            self._send(actor, job, *chunk)

    def _idlest_actor(self) -> _Actor | None:
        """The actor that should be free soonest, among those that may take another call."""
        best, best_wait = None, 0.0
        average = self._call_seconds or 0.0
        now = time.monotonic()
        for actor in self._actors:
            if actor.retiring or actor.calls >= self._depth:
                continue
            if actor.calls == 0:
                return actor
            # its queued calls, and the running one if it already took longer than usual
            wait = actor.calls * average + max(0.0, now - actor.busy_since - average)
            if best is None or wait < best_wait:
                best, best_wait = actor, wait
        return best

    def _send(self, actor: _Actor, job: _Job, start: int, items: list) -> None:
        if not minray.is_initialized():
            job.fail(start, len(items), RuntimeError("minray was shut down; the pool is gone"))
            return
        try:
            ref = actor.handle.run_batch.remote(job.func, job.mode, items)
        except Exception as exc:  # e.g. the function cannot be pickled
            job.fail(start, len(items), exc)
            return
        if actor.calls == 0:
            actor.busy_since = time.monotonic()
        actor.calls += 1
        actor.tasks += 1
        if self._maxtasks is not None and actor.tasks >= self._maxtasks:
            actor.retiring = True
        future = ref.future()
        self._calls[future] = (actor, job, start, len(items))
        future.add_done_callback(self._call_done)

    def _on_done(self, future) -> None:
        entry = self._calls.pop(future, None)
        if entry is None:
            return
        actor, job, start, count = entry
        actor.calls -= 1
        actor.busy_since = time.monotonic()
        try:
            values, errors, seconds = future.result()
        except Exception as exc:
            if isinstance(exc, RayActorError):
                actor.retiring = True
            job.fail(start, count, exc)
        else:
            self._note_call_time(seconds)
            if errors:
                errors = {k: _rebuild_error(*error) for k, error in errors.items()}
            job.deliver(start, values, errors)
        if actor.retiring and actor.calls == 0:
            self._retire(actor)

    def _note_call_time(self, seconds: float) -> None:
        average = self._call_seconds
        average = seconds if average is None else 0.8 * average + 0.2 * seconds
        self._call_seconds = average
        self._depth = next((depth for limit, depth in PIPELINE_DEPTHS if average < limit), 1)

    def _retire(self, actor: _Actor) -> None:
        self._actors.remove(actor)
        self._kill(actor)
        if self._closing and not self._work:
            return
        if not minray.is_initialized():
            return
        try:
            self._actors.append(_Actor(self._make_actor()))
        except Exception:
            logger.exception("The Pool could not start a replacement process.")

    def _terminate(self, exc: BaseException) -> None:
        calls = list(self._calls.items())
        self._calls.clear()
        for _, (_, job, start, count) in calls:
            job.abort_chunk(start, count, exc)
        for job in self._work:
            job.abort(exc)
        self._work.clear()
        while True:  # jobs submitted but not yet seen
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if event[0] == "job":
                event[1].abort(exc)
        self._stop_actors()
        # the killed calls fail at once; take their errors so none is reported as unhandled
        deadline = time.monotonic() + 5
        for future, _ in calls:
            try:
                future.exception(max(0.0, deadline - time.monotonic()))
            except Exception:
                pass

    def _stop_actors(self) -> None:
        for actor in self._actors:
            self._kill(actor)
        self._actors = []

    @staticmethod
    def _kill(actor: _Actor) -> None:
        if minray.is_initialized():
            try:
                minray.kill(actor.handle)
            except Exception:  # already gone
                pass


# --- the pool -----------------------------------------------------------------------------


class Pool:
    """A pool of worker processes (minray actors) with the stdlib ``multiprocessing.Pool`` API.

    ``processes`` defaults to the number of CPUs of the cluster; each process is
    an actor holding one CPU (override with ``ray_remote_args``). minray is
    started if it is not running yet. ``initializer(*initargs)`` runs once in
    each process; ``maxtasksperchild`` replaces a process after that many
    calls (chunks). ``context`` is accepted and ignored, as in Ray.
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable | None = None,
        initargs: Iterable | None = None,
        maxtasksperchild: int | None = None,
        context: Any = None,
        ray_address: str | None = None,
        ray_remote_args: dict | None = None,
    ):
        self._state = TERMINATE  # until the processes are up
        self._dispatcher: _Dispatcher | None = None
        self._processes = 0
        self._lock = threading.Lock()
        if context is not None:
            logger.warning(
                "The 'context' argument is not supported using minray; the pool's processes "
                "are minray actors, so it is ignored."
            )
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if maxtasksperchild is not None and (
            not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0
        ):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if processes is not None and processes <= 0:
            raise ValueError("Processes in the pool must be >0.")
        if not minray.is_initialized():
            if ray_address is None:
                minray.init()
            else:
                minray.init(address=ray_address)
        options = {"num_cpus": 1, **(ray_remote_args or {})}
        cpus = minray.cluster_resources().get("CPU", 0.0)
        per_process = options.get("num_cpus") or 0
        if processes is None:
            processes = int(cpus // per_process) if per_process else int(cpus)
            if processes <= 0:
                raise ValueError(
                    f"Cannot size the pool: the cluster has {cpus:g} CPUs; "
                    "pass processes= explicitly."
                )
        elif processes * per_process > cpus:
            raise ValueError(
                f"Tried to start a pool with {processes} processes on a minray cluster, "
                f"but there are only {cpus:g} CPUs in the cluster."
            )
        self._processes = processes
        actor_class = _pool_actor_class().options(**options)
        initargs = tuple(initargs) if initargs is not None else ()

        def make_actor():
            return actor_class.remote(initializer, initargs)

        handles = [make_actor() for _ in range(processes)]
        try:
            init_errors = minray.get([handle.ping.remote() for handle in handles])
        except BaseException:
            self._kill_all(handles)
            raise
        for error in init_errors:
            if error is not None:
                self._kill_all(handles)
                raise _rebuild_error(*error)
        self._dispatcher = _Dispatcher(make_actor, handles, maxtasksperchild)
        self._state = RUN

    @staticmethod
    def _kill_all(handles: list) -> None:
        for handle in handles:
            try:
                minray.kill(handle)
            except Exception:
                pass

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} state={self._state} pool_size={self._processes}>"

    def __reduce__(self):
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")

    def __del__(self) -> None:
        if getattr(self, "_state", None) == RUN and self._dispatcher is not None:
            self._state = TERMINATE
            self._dispatcher.terminate()
            try:
                warnings.warn(
                    f"unclosed running multiprocessing pool {self!r}", ResourceWarning, stacklevel=2
                )
            except Exception:  # interpreter shutdown
                pass

    # --- submitting -------------------------------------------------------------------

    def _check_running(self) -> None:
        if self._state != RUN:
            raise ValueError("Pool not running")

    def _submit(self, job: _Job) -> None:
        with self._lock:
            self._check_running()
            self._dispatcher.submit(job)

    def apply(self, func: Callable, args: Iterable = (), kwds: dict | None = None) -> Any:
        """``func(*args, **kwds)`` in one of the processes; blocks for the result."""
        return self.apply_async(func, args, kwds).get()

    def apply_async(
        self,
        func: Callable,
        args: Iterable = (),
        kwds: dict | None = None,
        callback: Callable | None = None,
        error_callback: Callable | None = None,
    ) -> AsyncResult:
        """``func(*args, **kwds)`` in one of the processes; returns an AsyncResult."""
        self._check_running()
        item = (tuple(args), dict(kwds or {}))
        result = AsyncResult(func, APPLY, [item], 1, callback, error_callback, single=True)
        self._submit(result)
        return result

    def map(self, func: Callable, iterable: Iterable, chunksize: int | None = None) -> list:
        """``[func(x) for x in iterable]``, computed in the processes; blocks."""
        return self._map_async(func, iterable, MAP, chunksize).get()

    def map_async(
        self,
        func: Callable,
        iterable: Iterable,
        chunksize: int | None = None,
        callback: Callable | None = None,
        error_callback: Callable | None = None,
    ) -> AsyncResult:
        return self._map_async(func, iterable, MAP, chunksize, callback, error_callback)

    def starmap(self, func: Callable, iterable: Iterable, chunksize: int | None = None) -> list:
        """``[func(*args) for args in iterable]``, computed in the processes; blocks."""
        return self._map_async(func, iterable, STARMAP, chunksize).get()

    def starmap_async(
        self,
        func: Callable,
        iterable: Iterable,
        chunksize: int | None = None,
        callback: Callable | None = None,
        error_callback: Callable | None = None,
    ) -> AsyncResult:
        return self._map_async(func, iterable, STARMAP, chunksize, callback, error_callback)

    def _map_async(self, func, iterable, mode, chunksize, callback=None, error_callback=None):
        self._check_running()
        items = iterable if isinstance(iterable, list) else list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(items), self._processes * CHUNKS_PER_PROCESS)
            if extra or not chunksize:
                chunksize += 1
        elif chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize}")
        result = AsyncResult(func, mode, items, chunksize, callback, error_callback)
        if items:
            self._submit(result)
        return result

    def imap(self, func: Callable, iterable: Iterable, chunksize: int = 1) -> IMapIterator:
        """Like ``map`` but an iterator that yields results in order as they are ready."""
        return self._imap(IMapIterator, func, iterable, chunksize)

    def imap_unordered(
        self, func: Callable, iterable: Iterable, chunksize: int = 1
    ) -> IMapUnorderedIterator:
        """Like ``imap`` but yields results in the order they complete."""
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize)

    def _imap(self, cls, func, iterable, chunksize):
        self._check_running()
        if chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize:n}")
        result = cls(func, MAP, iterable, chunksize)
        self._submit(result)
        return result

    # --- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Accept no more work; the processes exit once the submitted work is done."""
        with self._lock:
            if self._state == RUN:
                self._state = CLOSE
                self._dispatcher.close()

    def terminate(self) -> None:
        """Stop the processes now; unfinished results raise RuntimeError."""
        with self._lock:
            self._state = TERMINATE
            dispatcher = self._dispatcher
            if dispatcher is None:
                return
            if not dispatcher.finished.is_set():
                dispatcher.terminate()
        if threading.current_thread() is not dispatcher.thread:
            dispatcher.finished.wait()

    def join(self) -> None:
        """Wait for the processes to exit (after ``close()`` or ``terminate()``)."""
        if self._state == RUN:
            raise ValueError("Pool is still running")
        dispatcher = self._dispatcher
        if dispatcher is None:
            return
        if threading.current_thread() is dispatcher.thread:
            raise RuntimeError("Pool.join() cannot be called from a Pool callback")
        dispatcher.finished.wait()

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *exc_info) -> None:
        self.terminate()
