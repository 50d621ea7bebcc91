"""Interrupting the task on a worker's main thread, for ``cancel(ref)`` (not forced).

As in Ray, a cancelled task gets a KeyboardInterrupt (its caller then a
TaskCancelledError) and its worker lives on to run other tasks. The loop thread
marks the task as cancelled and sends SIGINT to the main thread: the signal
wakes a blocking call (``time.sleep``, a lock, a ``get``), and our handler
raises KeyboardInterrupt only while the marked task's code runs (its
"window"), so a signal that comes late never hits the next task or the
worker's own code. A task marked before its window opens is interrupted as
the window opens (it never runs). A signal that lands in minray's own code
(sending a message, counting a ref: state that must not break half-way) is
deferred: it comes again a moment later, until it lands in the task's code,
in a blocking wait of the standard library, or in one of minray's own waits
marked ``@interruptible`` (where ``get`` sleeps); and the task's next minray
API call, a point where nothing of minray's is half-done, raises it at once
(``safe_point``), so a task looping in minray calls is stopped at its next one.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
#: how long a signal that landed in minray's own code waits to come again
RETRY_S = 0.005
#: code of minray's own blocking waits, which a cancel may interrupt (see ``interruptible``)
_INTERRUPTIBLE: set = set()


def interruptible(function: Callable) -> Callable:
    """Mark a function of minray's that blocks, and that a cancel may interrupt (its
    callers clean up on any exception); a KeyboardInterrupt anywhere else in minray's
    code waits until the task's code runs again."""
    _INTERRUPTIBLE.add(function.__code__)
    return function


class TaskInterrupts:
    """Which pushed tasks are cancelled, and the window in which one may be interrupted."""

    def __init__(self, later: Callable[[float, Callable[[], None]], None]) -> None:
        self._later = later  #: any thread: call a function on the loop thread after a delay
        self._pushed: set[bytes] = set()  #: tasks pushed to this worker, not finished
        #: those of them to interrupt (not yet interrupted): whether recursively
        self._cancelled: dict[bytes, bool] = {}
        self._asked: set[bytes] = set()  #: those of them cancel() was called for
        self._window = b""  #: the task whose own code runs on the main thread now
        #: a signal landed in minray's code: the next minray API call interrupts instead
        self.deferred = False
        self._lock = threading.Lock()  #: _pushed and _cancelled, loop thread against main

    def install(self) -> None:
        """Main thread, once: SIGINT interrupts a cancelled task (and nothing else)."""
        signal.signal(signal.SIGINT, self._on_signal)

    def pushed(self, task_id: bytes) -> None:
        """Loop thread: a task came; it may be cancelled until it is ``finished``."""
        with self._lock:
            self._pushed.add(task_id)

    def finished(self, task_id: bytes) -> None:
        with self._lock:
            self._pushed.discard(task_id)
            self._cancelled.pop(task_id, None)
            self._asked.discard(task_id)

    def has(self, task_id: bytes) -> bool:
        """Whether the task was pushed here and has not finished."""
        return task_id in self._pushed

    def was_cancelled(self, task_id: bytes) -> bool:
        """Whether the task, running here, was cancelled (for ``is_canceled()``)."""
        return task_id in self._asked

    def cancelling_recursively(self, task_id: bytes) -> bool:
        """Whether the task was cancelled with ``recursive`` and its interrupt has not come
        yet: what it submits meanwhile is cancelled too (see task_builder.py)."""
        return self._cancelled.get(task_id, False)

    def cancel(self, task_id: bytes, recursive: bool) -> bool:
        """Loop thread: mark the task to be interrupted (as it starts, if it has not yet),
        if it is here and not finished; then ``interrupt()`` it if it runs. Returns
        whether it is here."""
        with self._lock:
            if task_id not in self._pushed:
                return False
            self._cancelled[task_id] = recursive
            self._asked.add(task_id)
            return True

    def interrupt(self) -> None:
        """Loop thread: signal the main thread (the task marked is interrupted, if it runs)."""
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    @interruptible
    def run(self, task_id: bytes, call: Callable[..., Any], *args) -> Any:
        """Main thread: ``call(*args)``, interruptible by ``cancel(task_id)``."""
        self._window = task_id
        try:
            if task_id in self._cancelled:  # cancelled before its window opened
                self._cancelled.pop(task_id, None)
                raise KeyboardInterrupt
            return call(*args)
        finally:
            self._window = b""

    def _on_signal(self, signum, frame) -> None:
        task_id = self._window
        if not task_id or task_id not in self._cancelled:
            return  # late, or early: the window's opening checks
        if _in_minray_code(frame):
            self.deferred = True  # the task's next minray call is a safe point
            self._later(RETRY_S, self._again)  # in minray's own code: not here
            return
        self._cancelled.pop(task_id, None)
        self.deferred = False
        raise KeyboardInterrupt

    def safe_point(self) -> None:
        """A minray API call starts (nothing of minray's is half-done): raise the deferred
        interrupt here, on the main thread, if the cancelled task still waits for it."""
        if threading.current_thread() is not threading.main_thread():
            return
        self.deferred = False
        task_id = self._window
        if task_id and self._cancelled.pop(task_id, None) is not None:
            raise KeyboardInterrupt

    def _again(self) -> None:
        """Loop thread: signal again if the task still runs and was not interrupted yet."""
        if self._window and self._window in self._cancelled:
            self.interrupt()


def _in_minray_code(frame) -> bool:
    """Whether the signal came while minray's own code runs, at any depth: walking up from
    where it landed, a frame of minray's (not marked ``@interruptible``) comes before one
    that is marked. Code minray calls counts as minray's (a namedtuple's ``__new__``, the
    standard library, a user's ``__reduce__`` while pickling): an interrupt there could
    leave minray's state half-changed (a ref counted but its free never sent)."""
    while frame is not None:
        code = frame.f_code
        if code in _INTERRUPTIBLE:
            return False
        if code.co_filename.startswith(_PACKAGE_DIR):
            return True
        frame = frame.f_back
    return False
