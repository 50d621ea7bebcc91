"""The threads of a threaded actor (``max_concurrency`` > 1): calls in the order they come.

A ``concurrent.futures.ThreadPoolExecutor`` makes a Future per call, and each Future
a Condition: about a sixth of a short call's time on the worker's loop thread. Here a
call is a queue item and a number; what waits for calls (``__ray_terminate__``, which
lets the calls before it finish, and the actor's exit) waits for the numbers below a
mark. Threads start as calls need them, up to ``size``: while fewer than ``size``
calls are unfinished, each has a thread, so calls that wait on one another (an event
one sets and another waits for) never wait for a thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("minray")


class CallThreads:
    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._next = 0  #: the number of the next call (loop thread)
        self._unfinished: set[int] = set()  #: numbers of calls queued or running
        self._finished = threading.Condition()
        self._waiters = 0  #: threads in wait_before (finishing calls notify only then)

    def submit(self, function: Callable, *args: Any) -> None:
        """Loop thread: run ``function(*args)`` on one of the threads."""
        number = self._next
        self._next += 1
        self._unfinished.add(number)
        self._calls.put((number, function, args))
        threads = len(self._threads)
        if threads < self._size and threads < len(self._unfinished):
            thread = threading.Thread(target=self._run, name=f"{self._name}_{threads}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def mark(self) -> int:
        """Loop thread: the number of the next call (``wait_before`` waits for those before)."""
        return self._next

    def wait_before(self, mark: int) -> None:
        """Wait until every call numbered below ``mark`` ended (on one of the pool's own
        threads too: a call waits only for calls before it, each on a thread of its own)."""
        with self._finished:
            self._waiters += 1
            try:
                while any(number < mark for number in tuple(self._unfinished)):
                    self._finished.wait()
            finally:
                self._waiters -= 1

    def stop(self) -> None:
        """Drop the calls not started yet; the threads end after their current call."""
        while True:
            try:
                number, _, _ = self._calls.get_nowait()
            except queue.Empty:
                break
            self._done(number)
        for _ in self._threads:
            self._calls.put(None)

    def _run(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            number, function, args = item
            try:
                function(*args)
            except BaseException:  # noqa: B036 - the thread serves the next call
                logger.exception("an actor call failed outside its own error handling")
            finally:
                self._done(number)

    def _done(self, number: int) -> None:
        self._unfinished.discard(number)
        if self._waiters:
            with self._finished:
                self._finished.notify_all()
