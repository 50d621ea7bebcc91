"""The task table survives a head restart: the restarted head takes back the attempts
the dead one saved (head/saved_tables.py), the member nodes send again the events of
the seconds it had not saved (node/head_client.py), and a task still running goes on
to FINISHED in the new head's table."""

from __future__ import annotations

import os
import time

import pytest

import minray
from minray.head.saved_tables import TASK_SAVE_INTERVAL_S
from minray.util import state

from .cluster_helpers import restartable_cluster, wait_until

BOUND_S = 60.0


@pytest.fixture
def cluster(monkeypatch):
    """A head (1 CPU) and a member node (2 CPUs and a "member" resource)."""
    yield from restartable_cluster(monkeypatch)


@minray.remote(num_cpus=0.5, resources={"member": 0.1})
def quick(i: int) -> int:
    return i


@minray.remote(num_cpus=0.5, resources={"member": 0.1})
def long_running(release: str) -> str:
    """Runs until ``release`` exists (at most BOUND_S)."""
    deadline = time.monotonic() + BOUND_S
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    return "done"


@minray.remote(num_cpus=0, resources={"member": 0.1})
class Owner:
    """On the member node, and at home there: owns the long-running task (a driver
    connected through the head would go with the head)."""

    def start(self, release: str) -> None:
        self.running = long_running.remote(release)

    def result(self) -> str:
        return minray.get(self.running, timeout=BOUND_S)


@minray.remote(num_cpus=0, resources={"member": 0.1})
def make_owner(release: str) -> None:
    owner = Owner.options(name="owner", lifetime="detached").remote()
    minray.get(owner.start.remote(release), timeout=BOUND_S)


def states(name: str) -> list[str]:
    return [t.state for t in state.list_tasks(filters=[("name", "=", name)], limit=10_000)]


def test_finished_and_running_tasks_are_listed_after_a_head_restart(cluster, tmp_path):
    cluster, member = cluster
    cluster.connect(namespace="tasks")
    assert minray.get([quick.remote(i) for i in range(20)], timeout=BOUND_S) == list(range(20))
    release = str(tmp_path / "release")
    minray.get(make_owner.remote(release), timeout=BOUND_S)
    assert wait_until(lambda: states("quick") == ["FINISHED"] * 20, BOUND_S), states("quick")
    assert wait_until(lambda: states("long_running") == ["RUNNING"], BOUND_S)
    # the driver's own events went to the head in-process: they are saved once a second
    time.sleep(TASK_SAVE_INTERVAL_S + 0.5)
    minray.shutdown()
    cluster._connected = False
    cluster.remove_node(cluster.head_node, allow_graceful=False)
    cluster.restart_head(num_cpus=1)
    cluster.wait_for_nodes(timeout=BOUND_S)
    cluster.connect(namespace="tasks")

    assert states("quick") == ["FINISHED"] * 20
    assert {t.name for t in state.list_tasks(limit=10_000)} >= {"quick", "make_owner"}
    assert wait_until(lambda: states("long_running") == ["RUNNING"], BOUND_S)
    open(release, "w").close()
    owner = minray.get_actor("owner")
    assert minray.get(owner.result.remote(), timeout=BOUND_S) == "done"
    assert wait_until(lambda: states("long_running") == ["FINISHED"], BOUND_S)
    (running,) = state.list_tasks(filters=[("name", "=", "long_running")], detail=True)
    assert running.node_id == member.node_id and running.start_time_ms
    minray.kill(owner)


def test_events_sent_just_before_the_head_died_are_sent_again(cluster, tmp_path):
    cluster, member = cluster
    cluster.connect(namespace="tasks")
    release = str(tmp_path / "release")
    minray.get(make_owner.remote(release), timeout=BOUND_S)
    assert wait_until(lambda: states("long_running") == ["RUNNING"], BOUND_S)
    minray.shutdown()  # at once: the head may not have saved the task yet
    cluster._connected = False
    cluster.remove_node(cluster.head_node, allow_graceful=False)
    cluster.restart_head(num_cpus=1)
    cluster.wait_for_nodes(timeout=BOUND_S)
    cluster.connect(namespace="tasks")
    assert wait_until(lambda: states("long_running") == ["RUNNING"], BOUND_S)
    (running,) = state.list_tasks(filters=[("name", "=", "long_running")], detail=True)
    assert running.node_id == member.node_id
    open(release, "w").close()
    assert wait_until(lambda: states("long_running") == ["FINISHED"], BOUND_S)
    minray.kill(minray.get_actor("owner"))
