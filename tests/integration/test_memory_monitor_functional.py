"""The node's memory monitor: past the threshold it kills the newest retriable worker;
the task runs again, or fails with OutOfMemoryError when it may not; the rest lives on.

The threshold is set a little above the machine's memory use at the test's start,
and the tasks allocate well past it, in steps, so the monitor (reading every
50 ms) catches them on the way.
"""

from __future__ import annotations

import dataclasses
import os
import time

import psutil
import pytest

import minray
from minray import api
from minray.cluster_utils import Cluster
from minray.exceptions import ActorDiedError, ActorUnavailableError, OutOfMemoryError
from tests.conftest import _start

CHUNK = 32 << 20


def _margin() -> int:
    vm = psutil.virtual_memory()
    return int(min(768 << 20, vm.available // 5))


def _low_threshold() -> dict:
    """Ray's settings for a monitor that acts ``_margin()`` bytes above today's use."""
    vm = psutil.virtual_memory()
    used = (vm.total - vm.available) / vm.total
    threshold = round(used + _margin() / vm.total, 4)
    return {"memory_usage_threshold": threshold, "memory_monitor_refresh_ms": 50}


@pytest.fixture
def low_memory_cluster():
    """A 2-CPU cluster whose memory monitor acts soon."""
    yield from _start(num_cpus=2, _system_config=_low_threshold())


def hog(limit: int) -> int:
    """Allocate (and touch) up to ``limit`` bytes, in steps; returns what it held."""
    held = []
    for _ in range(limit // CHUNK):
        held.append(b"x" * CHUNK)
        time.sleep(0.005)
    return len(held) * CHUNK


@minray.remote(max_retries=0)
def hog_task(limit: int) -> int:
    return hog(limit)


@minray.remote
def hog_once(limit: int, marker: str) -> str:
    """Hogs on its first run only (the marker file says it ran), then returns its pid."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        hog(limit)
        return "not killed"
    return f"ran again in {os.getpid()}"


@minray.remote(max_restarts=1)
class Holder:
    def __init__(self):
        self.kept = []

    def pid(self) -> int:
        return os.getpid()

    def hog(self, limit: int) -> int:
        return hog(limit)


@minray.remote(max_restarts=0, num_cpus=0)
class Bystander:
    def pid(self) -> int:
        return os.getpid()


def test_a_task_that_may_not_run_again_fails_with_out_of_memory_and_nothing_else_dies(
    low_memory_cluster,
):
    bystander = Bystander.remote()  # older, and it may not restart: not the one killed
    before = minray.get(bystander.pid.remote())
    with pytest.raises(OutOfMemoryError) as info:
        minray.get(hog_task.remote(4 * _margin()), timeout=60)
    message = str(info.value)
    assert "hog_task" in message and "ran low on memory" in message
    assert "memory usage threshold" in message and "PID\tMEM(GB)\tNAME" in message
    assert minray.get(bystander.pid.remote()) == before  # the same process: not killed
    assert minray.get(hog_task.remote(CHUNK)) == CHUNK  # the node runs tasks as before


def test_a_retriable_task_killed_for_memory_runs_again(low_memory_cluster, tmp_path, minray_log):
    marker = str(tmp_path / "ran")
    result = minray.get(hog_once.remote(4 * _margin(), marker), timeout=60)
    assert result.startswith("ran again in")
    assert "killed because its node ran low on memory; retrying" in minray_log.text


def test_with_no_memory_retries_left_a_retriable_task_fails_with_out_of_memory(
    low_memory_cluster, tmp_path
):
    worker = api._state.worker  # the owner's own setting (MINRAY_TASK_OOM_RETRIES)
    worker.config = dataclasses.replace(worker.config, task_oom_retries=0)
    with pytest.raises(OutOfMemoryError, match="hog_once"):
        minray.get(hog_once.remote(4 * _margin(), str(tmp_path / "ran")), timeout=60)


def test_an_actor_killed_for_memory_restarts_or_dies_with_the_reason(low_memory_cluster):
    holder = Holder.remote()  # may restart once
    first = minray.get(holder.pid.remote())
    with pytest.raises(ActorUnavailableError) as info:
        minray.get(holder.hog.remote(4 * _margin()), timeout=60)
    assert "ran low on memory" in str(info.value)
    assert minray.get(holder.pid.remote(), timeout=30) != first  # restarted

    mortal = Holder.options(max_restarts=0).remote()
    with pytest.raises(ActorDiedError) as info:
        minray.get(mortal.hog.remote(4 * _margin()), timeout=60)
    assert "ran low on memory" in str(info.value)


def test_a_task_killed_for_memory_on_another_node_tells_its_owner_why():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        far = cluster.add_node(num_cpus=1, resources={"far": 1}, _system_config=_low_threshold())
        cluster.wait_for_nodes()
        cluster.connect()
        with pytest.raises(OutOfMemoryError, match=far.node_id):
            minray.get(hog_task.options(resources={"far": 1}).remote(4 * _margin()), timeout=60)
    finally:
        cluster.shutdown()
