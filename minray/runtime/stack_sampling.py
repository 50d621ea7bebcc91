"""Profiling a process from inside: its threads' stacks now, or sampled for a while.

A mixin of :class:`~minray.runtime.core_worker.CoreWorker` (drivers and workers
alike). Its node passes on ``GetStacks`` and ``ProfileProcess`` (see
node/profile_handlers.py); they are answered on the loop thread:

* ``GetStacks`` reads ``sys._current_frames()`` at once (the loop thread shows
  itself answering);
* ``ProfileProcess`` starts a daemon thread, ``minray-profiler``, that reads them
  ``rate_hz`` times a second for ``duration_s`` seconds and leaves itself out.
  The loop thread only waits for its result, and the running task is not
  touched: a task busy in pure Python holds the GIL, but the interpreter hands it
  over every ``sys.getswitchinterval()`` (5 ms), so the sampler still runs near its
  rate. One profile at a time per process; it is a daemon thread, bounded by the
  duration (at most a minute), so an exiting process does not wait for it.

The folding and the text are pure (runtime/stacks.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..protocol.connection import Connection
from ..protocol.messages import (
    BAD_REQUEST,
    NOT_NOW,
    ErrorReply,
    GetStacks,
    Profile,
    ProfileProcess,
    Stacks,
)
from .stacks import Folder, profile_problem, snapshot

if TYPE_CHECKING:
    from .core_worker import CoreWorker


def thread_names() -> dict[int, str]:
    """``{thread id: name}`` of the threads the threading module knows."""
    return {t.ident: t.name for t in threading.enumerate() if t.ident is not None}


def sample_stacks(
    duration_s: float,
    rate_hz: int,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Folder, float]:
    """Read every other thread's stack ``rate_hz`` times a second for ``duration_s``
    seconds (or until ``stop`` is set); returns the folded samples and the seconds it
    ran. Ticks are kept on a fixed schedule: a late sample shortens the next wait, and
    ticks missed entirely are skipped, never taken in a burst."""
    me = threading.get_ident()
    folder = Folder()
    interval = 1.0 / rate_hz
    start = clock()
    end = start + duration_s
    tick = start
    while True:
        now = clock()
        if now >= end:
            break
        folder.add(snapshot(sys._current_frames(), thread_names(), exclude=(me,)))
        tick += interval
        now = clock()
        while tick <= now:
            tick += interval
        if stop.wait(min(tick, end) - now):
            break
    return folder, clock() - start


class StackSampling:
    """``handle_GetStacks`` and ``handle_ProfileProcess``, mixed into the CoreWorker."""

    _profiling: bool = False  #: a profile of this process is running

    def handle_GetStacks(self: CoreWorker, conn: Connection, msg: GetStacks) -> Stacks:
        threads = snapshot(sys._current_frames(), thread_names())
        rows = [[name, ident, [list(frame) for frame in frames]] for name, ident, frames in threads]
        return Stacks(os.getpid(), self.node_id, self.worker_id, rows)

    def handle_ProfileProcess(self: CoreWorker, conn: Connection, msg: ProfileProcess):
        problem = profile_problem(msg.duration_s, msg.rate_hz)
        if problem:
            return ErrorReply(BAD_REQUEST, problem)
        if self._profiling:
            return ErrorReply(
                NOT_NOW,
                f"a profile of process {os.getpid()} is running already; ask again when it "
                "has finished",
            )
        self._profiling = True
        loop = self.loop
        answer: asyncio.Future = loop.create_future()

        def run() -> None:
            try:
                folder, seconds = sample_stacks(msg.duration_s, msg.rate_hz, threading.Event())
                result = Profile(
                    os.getpid(), self.node_id, self.worker_id, folder.samples, seconds,
                    folder.rows(),
                )  # fmt: skip
            except Exception as e:  # noqa: BLE001 - the asker gets it as ErrorReply
                result = e
            try:
                loop.call_soon_threadsafe(self._profile_done, answer, result)
            except RuntimeError:  # the loop is closed: this process is shutting down
                pass

        try:
            threading.Thread(target=run, name="minray-profiler", daemon=True).start()
        except RuntimeError as e:  # no thread to be had (a process at its limit)
            self._profiling = False
            return ErrorReply(NOT_NOW, f"process {os.getpid()} cannot start a thread now: {e}")
        return answer

    def _profile_done(self: CoreWorker, answer: asyncio.Future, result) -> None:
        self._profiling = False
        if answer.done():
            return
        if isinstance(result, Exception):
            answer.set_exception(result)
        else:
            answer.set_result(result)
