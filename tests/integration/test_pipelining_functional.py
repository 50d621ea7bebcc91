"""Pipelining: while a queue's tasks are short, the owner pushes a lease's next tasks
(about a millisecond of them) before the reply to the one running. A task held behind
a long one, or behind one blocked in get(), goes back to its owner unstarted and runs
elsewhere; one held when its worker dies runs again without spending a retry; one
cancelled while held is cancelled, and the task ahead of it runs on."""

from __future__ import annotations

import os
import time

import pytest

import minray
from minray import api
from minray.exceptions import TaskCancelledError, WorkerCrashedError


@minray.remote
def short(i: int = 0) -> int:
    return i


@minray.remote
def sleeper(seconds: float) -> float:
    time.sleep(seconds)
    return time.monotonic()


@minray.remote(max_retries=0)
def crasher() -> None:
    os._exit(1)


@minray.remote(max_retries=0)
def fragile(i: int) -> int:
    return i


@minray.remote(num_cpus=0)
class Signal:
    def __init__(self) -> None:
        self.sent = False

    def send(self) -> None:
        self.sent = True

    def is_sent(self) -> bool:
        return self.sent


@minray.remote
def wait_for(signal) -> str:
    deadline = time.monotonic() + 30
    while not minray.get(signal.is_sent.remote()):  # a get() that blocks the worker
        assert time.monotonic() < deadline, "the signal never came"
        time.sleep(0.01)
    return "released"


def submitter():
    return api._auto_init().submitter


def warm(fn=short) -> None:
    """A burst of short tasks: the owner now counts the queue's tasks as short."""
    assert minray.get([fn.remote(i) for i in range(200)]) == list(range(200))


def test_many_short_tasks_all_come_back_in_order(cluster) -> None:
    refs = [short.remote(i) for i in range(20_000)]
    assert minray.get(refs) == list(range(20_000))


def test_a_task_held_behind_a_long_one_goes_back_and_runs_on_the_other_worker(cluster) -> None:
    warm()
    long_ref = sleeper.remote(3.0)
    shorts = [short.remote(i) for i in range(50)]
    assert minray.get(shorts) == list(range(50))
    shorts_done = time.monotonic()
    assert minray.get(long_ref) - shorts_done > 0.5, "a short task waited for the long one"


def test_a_task_held_on_a_single_worker_goes_back_and_runs_after(cluster_1cpu) -> None:
    """(A few tries: a slow reply during the warm-up, on a busy machine, turns pipelining
    off until the next reply, and then nothing is held.)"""
    for _ in range(5):
        warm()
        before = submitter().handed_back
        long_ref = sleeper.remote(0.3)
        short_ref = sleeper.remote(0.0)
        assert minray.get(short_ref) >= minray.get(long_ref)
        if submitter().handed_back == before + 1:
            return
    raise AssertionError("the task behind the long one was never handed back")


def test_a_held_task_does_not_wait_on_a_task_blocked_in_get(cluster_1cpu) -> None:
    """The task ahead blocks until the driver has the held task's result: without the
    hand-back this would never end."""
    signal = Signal.remote()
    warm()
    blocked = wait_for.remote(signal)
    behind = short.remote(7)
    assert minray.get(behind, timeout=20) == 7
    signal.send.remote()
    assert minray.get(blocked, timeout=20) == "released"


def test_a_held_task_runs_again_without_a_retry_when_its_worker_dies(cluster_1cpu) -> None:
    warm(fragile)
    crashed = crasher.remote()
    behind = fragile.remote(5)
    with pytest.raises(WorkerCrashedError):
        minray.get(crashed, timeout=20)
    assert minray.get(behind, timeout=20) == 5


def test_cancelling_a_held_task_leaves_the_one_ahead_running(cluster_1cpu) -> None:
    warm()
    long_ref = sleeper.remote(0.3)
    behind = short.remote(1)
    minray.cancel(behind)
    with pytest.raises(TaskCancelledError):
        minray.get(behind, timeout=20)
    assert minray.get(long_ref, timeout=20) > 0


def test_several_tasks_held_behind_a_long_one_all_go_back_and_run_after(cluster_1cpu) -> None:
    """A lease carries about a millisecond of short tasks, several of them: each one held
    behind a task that turns out long goes back, and runs after it. (A few tries, as
    above.)"""
    for _ in range(5):
        warm()
        before = submitter().handed_back
        long_ref = sleeper.remote(0.3)
        behind = [sleeper.remote(0.0) for _ in range(5)]
        finished = minray.get(long_ref, timeout=20)
        assert all(started >= finished for started in minray.get(behind, timeout=20))
        if submitter().handed_back >= before + 3:
            return
    raise AssertionError("fewer than three tasks were ever held behind the long one")


def test_tasks_held_behind_one_whose_worker_dies_all_run_again_without_a_retry(
    cluster_1cpu,
) -> None:
    warm(fragile)
    crashed = crasher.remote()
    behind = [fragile.remote(i) for i in range(5)]
    with pytest.raises(WorkerCrashedError):
        minray.get(crashed, timeout=20)
    assert minray.get(behind, timeout=20) == list(range(5))
