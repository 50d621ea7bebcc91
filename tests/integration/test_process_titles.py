"""``ps`` says what each minray process does: the node, its zygote, idle workers, the task
a worker runs, and the actor a worker hosts (read from /proc/PID/cmdline, as ps does)."""

from __future__ import annotations

import time

import psutil

import minray
from minray import api

from .cluster_helpers import wait_until


def title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\x00")[0].decode()
    except OSError:
        return ""


def titles() -> dict[int, str]:
    node = psutil.Process(api._state.node_process.pid)
    return {p.pid: title(p.pid) for p in [node, *node.children(recursive=True)]}


@minray.remote
def sleepy_task(seconds: float) -> int:
    time.sleep(seconds)
    return 1


@minray.remote(num_cpus=0)
class Librarian:
    def pid(self) -> int:
        import os

        return os.getpid()


def test_process_titles_say_what_each_process_does(cluster):
    node_pid = api._state.node_process.pid
    assert title(node_pid) == "minray::head"
    assert "minray::zygote" in titles().values()
    assert wait_until(lambda: "minray::IDLE" in titles().values())

    ref = sleepy_task.remote(30)
    assert wait_until(lambda: "minray::sleepy_task" in titles().values()), titles()
    minray.cancel(ref, force=True)
    actor = Librarian.remote()
    actor_pid = minray.get(actor.pid.remote())
    assert title(actor_pid) == "minray::Librarian"
    assert minray.get(sleepy_task.remote(0)) == 1
    assert wait_until(lambda: "minray::IDLE" in titles().values()), titles()
    assert title(actor_pid) == "minray::Librarian"  # an actor is never IDLE
    del actor
