"""How actors end on purpose, as in Ray 2.x: ``exit_actor()``, ``__ray_terminate__``,
handles going out of scope (each runs ``__ray_shutdown__`` and the atexit handlers,
once), and ``kill`` (runs neither)."""

from __future__ import annotations

import asyncio
import atexit
import os
import time

import psutil
import pytest

import minray
from minray.exceptions import ActorDiedError


def _note(path: str, event: str) -> None:
    with open(path, "a") as f:
        f.write(event + "\n")


def _events(path) -> list[str]:
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def _wait_gone(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"the actor's worker {pid} did not exit within {timeout} s")


class Recorder:
    """Notes in a file when its atexit handler and __ray_shutdown__ run."""

    def __init__(self, path, exit_in_init=False):
        self.path = path
        atexit.register(_note, path, "atexit")
        if exit_in_init:
            minray.actor.exit_actor()
            _note(path, "after-exit-in-init")  # never runs: the exception ends __init__

    def pid(self):
        return os.getpid()

    def slow(self, seconds):
        time.sleep(seconds)
        return "slow"

    def quit(self):
        minray.actor.exit_actor()

    def quit_and_catch(self):
        try:
            minray.actor.exit_actor()
        except SystemExit:
            _note(self.path, "caught")
        return "ignored"  # the caller gets ActorDiedError all the same, as in Ray

    def __ray_shutdown__(self):
        _note(self.path, "shutdown")
        if "bad" in os.path.basename(self.path):
            raise ValueError("broken __ray_shutdown__")


SyncRecorder = minray.remote(Recorder)
ThreadedRecorder = minray.remote(max_concurrency=4)(Recorder)


@minray.remote
class AsyncRecorder(Recorder):
    async def pid(self):
        return os.getpid()

    async def nap(self, seconds):
        await asyncio.sleep(seconds)
        return "nap"

    async def quit_and_catch(self):
        try:
            minray.actor.exit_actor()
        except BaseException:  # noqa: B036 - AsyncioActorExit, caught on purpose
            _note(self.path, "caught")
        return "ignored"


KINDS = {"sync": SyncRecorder, "threaded": ThreadedRecorder, "async": AsyncRecorder}


@pytest.mark.parametrize("kind", KINDS)
def test_ray_terminate_runs_ray_shutdown_and_atexit_once(cluster, tmp_path, kind):
    path = str(tmp_path / "events")
    actor = KINDS[kind].remote(path)
    pid = minray.get(actor.pid.remote(), timeout=30)
    with pytest.raises(ActorDiedError, match="__ray_terminate__ was called"):
        minray.get(actor.__ray_terminate__.remote(), timeout=30)
    del actor  # going out of scope afterwards runs nothing a second time
    _wait_gone(pid)
    assert _events(path) == ["shutdown", "atexit"]


@pytest.mark.parametrize("kind", KINDS)
def test_handles_going_out_of_scope_run_ray_shutdown_and_atexit(cluster, tmp_path, kind):
    path = str(tmp_path / "events")
    actor = KINDS[kind].remote(path)
    pid = minray.get(actor.pid.remote(), timeout=30)
    del actor
    _wait_gone(pid)
    assert _events(path) == ["shutdown", "atexit"]


def test_kill_runs_neither_ray_shutdown_nor_atexit(cluster, tmp_path):
    path = str(tmp_path / "events")
    actor = SyncRecorder.remote(path)
    pid = minray.get(actor.pid.remote(), timeout=30)
    minray.kill(actor)
    _wait_gone(pid)
    del actor
    time.sleep(0.3)
    assert _events(path) == []


def test_exit_actor_fails_its_call_and_the_calls_queued_behind_it(cluster, tmp_path):
    path = str(tmp_path / "events")
    actor = SyncRecorder.remote(path)
    pid = minray.get(actor.pid.remote(), timeout=30)
    before = actor.slow.remote(0.5)
    quitting = actor.quit.remote()
    queued = actor.pid.remote()
    assert minray.get(before, timeout=30) == "slow"
    for ref in (quitting, queued):
        with pytest.raises(ActorDiedError, match="exit_actor\\(\\) was called in Recorder.quit"):
            minray.get(ref, timeout=30)
    _wait_gone(pid)
    assert _events(path) == ["shutdown", "atexit"]
    with pytest.raises(ActorDiedError, match="exit_actor\\(\\) was called in Recorder.quit"):
        minray.get(actor.pid.remote(), timeout=30)


@pytest.mark.parametrize("kind", KINDS)
def test_exit_actor_ends_the_actor_even_when_the_method_catches_it(cluster, tmp_path, kind):
    path = str(tmp_path / "events")
    actor = KINDS[kind].remote(path)
    pid = minray.get(actor.pid.remote(), timeout=30)
    with pytest.raises(ActorDiedError, match="exit_actor\\(\\) was called in .*quit_and_catch"):
        minray.get(actor.quit_and_catch.remote(), timeout=30)  # its return value is dropped
    with pytest.raises(ActorDiedError, match="exit_actor"):
        minray.get(actor.pid.remote(), timeout=30)
    _wait_gone(pid)
    assert _events(path) == ["caught", "shutdown", "atexit"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_exit_actor_in_the_constructor_ends_the_actor(cluster, tmp_path, kind):
    path = str(tmp_path / "events")
    actor = KINDS[kind].remote(path, exit_in_init=True)
    with pytest.raises(ActorDiedError, match="exit_actor\\(\\) was called in .*__init__"):
        minray.get(actor.pid.remote(), timeout=30)
    deadline = time.monotonic() + 20
    while len(_events(path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _events(path) == ["shutdown", "atexit"]


def test_an_error_in_ray_shutdown_is_logged_not_raised(cluster, tmp_path, capfd):
    path = str(tmp_path / "bad-events")
    actor = SyncRecorder.remote(path)
    pid = minray.get(actor.pid.remote(), timeout=30)
    with pytest.raises(ActorDiedError, match="__ray_terminate__ was called"):
        minray.get(actor.__ray_terminate__.remote(), timeout=30)
    _wait_gone(pid)
    assert _events(path) == ["shutdown", "atexit"]  # the atexit handlers still ran
    deadline = time.monotonic() + 10
    err = ""
    while "broken __ray_shutdown__" not in err and time.monotonic() < deadline:
        time.sleep(0.1)
        err += capfd.readouterr().err
    assert "Error during actor __ray_shutdown__ method of Recorder" in err
    assert "ValueError: broken __ray_shutdown__" in err
