"""cancel(ref, recursive=True), Ray's default, reaches the tasks and actor calls that the
cancelled task submitted, and theirs in turn; recursive=False leaves them running. A task
cancelled without force is interrupted and its worker lives on; with force it exits."""

from __future__ import annotations

import asyncio
import os
import time

import psutil
import pytest

import minray
from minray.exceptions import TaskCancelledError


def wait_for_file(path: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


def started_pid(folder: str) -> int:
    """Wait for the deepest task to start; the pid of its worker."""
    path = os.path.join(folder, "started")
    assert wait_for_file(path), "the deepest task never started"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(path) as f:
            text = f.read()
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError("the deepest task did not write its pid")


def gone(pid: int, timeout: float = 10.0) -> bool:
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


def mark(folder: str, name: str, text: str = "") -> None:
    with open(os.path.join(folder, name + ".tmp"), "w") as f:
        f.write(text)
    os.replace(os.path.join(folder, name + ".tmp"), os.path.join(folder, name))


@minray.remote
def nested(depth: int, folder: str, seconds: float = 30) -> str:
    """Submits ``nested(depth - 1)`` and waits for it; the deepest one sleeps, and says
    when it started, when its sleep ended normally ("slept") and when it left ("ended",
    in a ``finally``: an interrupt runs it, a killed worker does not)."""
    if depth > 0:
        return minray.get(nested.remote(depth - 1, folder, seconds))
    mark(folder, "started", str(os.getpid()))
    try:
        time.sleep(seconds)
        mark(folder, "slept")
    finally:
        mark(folder, "ended")
    return "slept"


@minray.remote
class Sleeper:
    async def sleep(self, folder: str) -> str:
        mark(folder, "started", str(os.getpid()))
        try:
            await asyncio.sleep(30)
            mark(folder, "slept")
        finally:
            mark(folder, "ended")
        return "slept"

    async def submit_nested(self, folder: str) -> str:
        return await nested.remote(0, folder)

    def ping(self) -> str:
        return "pong"


@minray.remote
class SyncCaller:
    def submit_nested(self, folder: str) -> str:
        return minray.get(nested.remote(0, folder))


@minray.remote
def call_actor(sleeper, folder: str) -> str:
    return minray.get(sleeper.sleep.remote(folder))


@pytest.mark.parametrize("depth", [1, 2])
def test_cancel_reaches_the_tasks_a_task_submitted_and_theirs(cluster, tmp_path, depth):
    folder = str(tmp_path)
    top = nested.remote(depth, folder)
    pid = started_pid(folder)
    minray.cancel(top)
    with pytest.raises(TaskCancelledError):
        minray.get(top, timeout=15)
    assert wait_for_file(os.path.join(folder, "ended")), "the deepest task was not cancelled"
    assert not os.path.exists(os.path.join(folder, "slept"))
    assert psutil.pid_exists(pid), "an interrupted task's worker lives on"


def test_cancel_reaches_an_actor_call_the_task_made(cluster, tmp_path):
    folder = str(tmp_path)
    sleeper = Sleeper.remote()
    top = call_actor.remote(sleeper, folder)
    started_pid(folder)
    minray.cancel(top)
    with pytest.raises(TaskCancelledError):
        minray.get(top, timeout=15)
    assert wait_for_file(os.path.join(folder, "ended")), "the actor call was not cancelled"
    assert not os.path.exists(os.path.join(folder, "slept"))
    assert minray.get(sleeper.ping.remote(), timeout=15) == "pong"


def test_cancel_with_recursive_false_leaves_what_the_task_submitted_running(cluster, tmp_path):
    folder = str(tmp_path)
    top = nested.remote(1, folder, 2.0)
    started_pid(folder)
    minray.cancel(top, recursive=False)
    with pytest.raises(TaskCancelledError):
        minray.get(top, timeout=15)
    assert not os.path.exists(os.path.join(folder, "ended")), "the child was cancelled too"
    assert wait_for_file(os.path.join(folder, "slept")), "the child did not run to its end"


def test_a_cancelled_task_is_interrupted_and_its_worker_runs_the_next_task(cluster_1cpu, tmp_path):
    @minray.remote
    def pid() -> int:
        return os.getpid()

    before = minray.get(pid.remote(), timeout=15)
    folder = str(tmp_path)
    top = nested.remote(0, folder)
    assert started_pid(folder) == before
    minray.cancel(top)
    with pytest.raises(TaskCancelledError):
        minray.get(top, timeout=15)
    assert wait_for_file(os.path.join(folder, "ended"))  # its finally ran
    assert minray.get(pid.remote(), timeout=15) == before


@pytest.mark.parametrize("recursive", [True, False])
def test_force_cancel_exits_the_worker_and_the_tasks_it_submitted_die(cluster, tmp_path, recursive):
    """force=True: the worker exits; its child task is force-cancelled first (recursive),
    or dies with its owner (not recursive): either way it does not run on."""
    folder = str(tmp_path)
    top = nested.remote(1, folder)
    child_pid = started_pid(folder)
    minray.cancel(top, force=True, recursive=recursive)
    with pytest.raises(TaskCancelledError):
        minray.get(top, timeout=15)
    assert gone(child_pid), "the child's worker still runs"
    assert not os.path.exists(os.path.join(folder, "slept"))


def test_force_cancel_cancels_but_never_forces_the_actor_calls_it_made(cluster, tmp_path):
    folder = str(tmp_path)
    sleeper = Sleeper.remote()
    top = call_actor.remote(sleeper, folder)
    actor_pid = started_pid(folder)
    minray.cancel(top, force=True)
    with pytest.raises(TaskCancelledError):
        minray.get(top, timeout=15)
    assert wait_for_file(os.path.join(folder, "ended")), "the actor call was not cancelled"
    assert minray.get(sleeper.ping.remote(), timeout=15) == "pong"
    assert psutil.pid_exists(actor_pid)


@pytest.mark.parametrize("actor_class", [Sleeper, SyncCaller])
def test_cancel_of_an_actor_call_reaches_the_task_it_submitted(cluster, tmp_path, actor_class):
    """An async call is cancelled itself; a sync one runs on (as in Ray) but the task it
    waits for is cancelled, so it fails with that task's TaskCancelledError."""
    folder = str(tmp_path)
    actor = actor_class.remote()
    call = actor.submit_nested.remote(folder)
    started_pid(folder)
    minray.cancel(call)
    with pytest.raises(TaskCancelledError):
        minray.get(call, timeout=15)
    assert wait_for_file(os.path.join(folder, "ended")), "the task it submitted was not cancelled"
    assert not os.path.exists(os.path.join(folder, "slept"))


@minray.remote(num_cpus=1)
def one_of_many(folder: str, i: int) -> None:
    mark(folder, f"started-{i}")
    try:
        time.sleep(30)
    finally:
        mark(folder, f"ended-{i}")


@minray.remote(num_cpus=1)
def fan_out(folder: str, n: int) -> None:
    """Submits ``n`` children in a tight loop (mostly minray's own code, where an interrupt
    waits), then waits for them."""
    mark(folder, "fanning")
    refs = [one_of_many.remote(folder, i) for i in range(n)]
    minray.get(refs)


def test_cancel_in_the_middle_of_a_fan_out_reaches_every_child(cluster, tmp_path):
    """Children submitted after the cancel's scan of what the task submitted, before its
    interrupt came, are cancelled too: none is left to run once the first one ends."""
    folder = str(tmp_path)
    top = fan_out.remote(folder, 3000)
    assert wait_for_file(os.path.join(folder, "fanning"))
    minray.cancel(top)
    with pytest.raises(TaskCancelledError):
        minray.get(top, timeout=15)
    time.sleep(1.5)  # a child the cancel missed would start meanwhile (a CPU is free)
    started = sorted(name for name in os.listdir(folder) if name.startswith("started-"))
    for name in started:
        ended = os.path.join(folder, name.replace("started-", "ended-"))
        assert wait_for_file(ended, timeout=10), f"{name}: a child the cancel missed runs on"
    assert len(started) < 10, started


@minray.remote
def put_forever(folder: str) -> None:
    mark(folder, "started", str(os.getpid()))
    while True:  # mostly minray's own code, where an interrupt waits for the task's code
        minray.put(b"x" * 100)


def test_a_task_looping_in_minray_calls_is_interrupted_too(cluster, tmp_path):
    folder = str(tmp_path)
    ref = put_forever.remote(folder)
    started_pid(folder)
    minray.cancel(ref)
    with pytest.raises(TaskCancelledError):
        minray.get(ref, timeout=15)


@minray.remote(num_cpus=0)
def cancel_borrowed(refs: list, recursive: bool) -> str:
    minray.cancel(refs[0], recursive=recursive)  # its owner, the driver, is asked
    return "asked"


def test_cancel_of_a_borrowed_ref_reaches_what_its_task_submitted(cluster, tmp_path):
    folder = str(tmp_path)
    top = nested.remote(1, folder)
    started_pid(folder)
    assert minray.get(cancel_borrowed.remote([top], True), timeout=15) == "asked"
    with pytest.raises(TaskCancelledError):
        minray.get(top, timeout=15)
    assert wait_for_file(os.path.join(folder, "ended")), "the deepest task was not cancelled"


@minray.remote
def catch_the_interrupt(folder: str) -> tuple:
    mark(folder, "started", str(os.getpid()))
    canceled_before = minray.get_runtime_context().is_canceled()
    try:
        time.sleep(30)
    except KeyboardInterrupt:
        return "caught", canceled_before, minray.get_runtime_context().is_canceled()
    return "slept", canceled_before, False


def test_a_task_that_catches_the_interrupt_returns_and_knows_it_was_cancelled(cluster, tmp_path):
    folder = str(tmp_path)
    ref = catch_the_interrupt.remote(folder)
    started_pid(folder)
    minray.cancel(ref)
    assert minray.get(ref, timeout=15) == ("caught", False, True)  # as in Ray


def test_cancel_rejects_what_is_not_a_ref(cluster):
    with pytest.raises(TypeError, match="only supported for object refs"):
        minray.cancel(nested)
    with pytest.raises(TypeError, match="only supported for object refs"):
        minray.cancel("not a ref")


@minray.remote(num_returns=2)
def spin_then_yield(folder: str):
    mark(folder, "started", str(os.getpid()))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the task's own code, run as its values are collected
        pass
    yield 1
    yield 2


def test_a_generator_collected_for_num_returns_is_interrupted(cluster, tmp_path):
    folder = str(tmp_path)
    first, _ = spin_then_yield.remote(folder)
    started_pid(folder)
    minray.cancel(first)
    with pytest.raises(TaskCancelledError):
        minray.get(first, timeout=15)
