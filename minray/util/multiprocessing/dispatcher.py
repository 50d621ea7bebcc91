"""The Pool's dispatcher thread: owns all scheduling state, hands chunks to the actor
expected to be free soonest, delivers results, replaces actors."""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable

import minray
from minray.exceptions import RayActorError

from .pool_actor import _rebuild_error
from .results import _Job

logger = logging.getLogger("minray.util.multiprocessing")

#: (average call seconds below which, calls allowed at one actor): 1 above them all
PIPELINE_DEPTHS = ((0.005, 8), (0.05, 2))


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
