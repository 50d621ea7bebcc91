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

import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import minray

from .dispatcher import _Dispatcher
from .pool_actor import APPLY, MAP, STARMAP, _pool_actor_class, _rebuild_error
from .results import AsyncResult, IMapIterator, IMapUnorderedIterator, _Job

logger = logging.getLogger("minray.util.multiprocessing")

#: a map() without chunksize cuts its items into this many chunks per process (as the stdlib)
CHUNKS_PER_PROCESS = 4

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"


# --- the pool -----------------------------------------------------------------------------


def _start_minray(processes: int | None, per_process: float, ray_address: str | None) -> None:
    """Start or join minray for a pool created before ``init()``, as Ray's Pool does.

    ``ray_address``, else ``MINRAY_ADDRESS`` (``RAY_ADDRESS`` under minray.compat),
    names a cluster to join; otherwise (or with "local") a local cluster starts
    with just the CPUs the pool's processes hold (the machine's when
    ``processes`` is not given).
    """
    address = ray_address
    if address is None:
        address = os.environ.get("MINRAY_ADDRESS") or None
        if address is None and sys.modules.get("ray") is minray:
            address = os.environ.get("RAY_ADDRESS") or None
    if address not in (None, "local"):
        minray.init(address=address)
        return
    num_cpus = None
    if processes is not None:
        num_cpus = processes * per_process if per_process else processes
    minray.init(address=address, num_cpus=num_cpus)


class Pool:
    """A pool of worker processes (minray actors) with the stdlib ``multiprocessing.Pool`` API.

    ``processes`` defaults to the number of CPUs of the cluster; each process is
    an actor holding one CPU (override with ``ray_remote_args``). If minray is
    not running yet, the pool starts it, as Ray's does: it joins the cluster at
    ``ray_address`` (or ``MINRAY_ADDRESS``), else starts a local one with
    ``processes`` CPUs. ``initializer(*initargs)`` runs once in
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
        options = {"num_cpus": 1, **(ray_remote_args or {})}
        per_process = options.get("num_cpus") or 0
        if not minray.is_initialized():
            _start_minray(processes, per_process, ray_address)
        cpus = minray.cluster_resources().get("CPU", 0.0)
        if processes is None:
            processes = int(cpus // per_process) if per_process else int(cpus)
            if processes <= 0:
                raise ValueError(
                    f"Cannot size the pool: the cluster has {cpus:g} CPUs; "
                    "pass processes= explicitly."
                )
        elif processes * per_process > cpus:
            raise ValueError(
                f"Tried to start a pool with {processes} processes on an existing minray "
                f"cluster, but there are only {cpus:g} CPUs in the cluster. Pass at most "
                f"processes={int(cpus // per_process)}, or create the pool before minray.init() "
                "so that it starts a cluster of its own size."
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
