"""A detached actor outlives the process that created it: it still starts when its
creator exits before a worker was free, and still restarts (``max_restarts``) when
its worker dies after its creator has exited, as in Ray, where the GCS owns it."""

from __future__ import annotations

import os
import time

import psutil
import pytest

import minray
from minray.cluster_utils import Cluster
from minray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from minray.util.state import get_actor as actor_state

from .cluster_helpers import pid_in, read_stripped, wait_until

BOUND_S = 30.0


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@minray.remote
class _Counter:
    def __init__(self, path: str):
        self.calls = 0
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")

    def pid(self) -> int:
        self.calls += 1
        return os.getpid()

    def restarted(self) -> bool:
        return minray.get_runtime_context().was_current_actor_reconstructed


@minray.remote(max_retries=0)
def _create_and_exit(path: str, name: str, options: dict, wait_started: bool) -> None:
    actor = _Counter.options(name=name, lifetime="detached", **options).remote(path)
    if wait_started:
        minray.get(actor.pid.remote())
    with open(path + ".creator", "w") as f:
        f.write(str(os.getpid()))
    os._exit(1)


def _pids(path: str) -> list[int]:
    return [int(line) for line in read_stripped(path).split()]


@pytest.mark.parametrize("cluster", [{"num_cpus": 2}], indirect=True)
def test_a_detached_actor_restarts_after_its_creator_has_exited(cluster, tmp_path):
    path = str(tmp_path / "actor")
    with pytest.raises(minray.exceptions.WorkerCrashedError):
        minray.get(_create_and_exit.remote(path, "kept", {"max_restarts": 2}, True), timeout=60)
    first = _pids(path)[0]
    assert wait_until(lambda: _gone(pid_in(path + ".creator", BOUND_S)), BOUND_S)

    os.kill(first, 9)  # its worker dies: only the node can have it created again
    assert wait_until(lambda: len(_pids(path)) == 2, BOUND_S), "the actor did not restart"
    actor = minray.get_actor("kept")
    second = minray.get(actor.pid.remote(), timeout=BOUND_S)
    assert second == _pids(path)[1] != first
    assert minray.get(actor.restarted.remote(), timeout=BOUND_S) is True
    assert actor_state(actor._actor_id.hex()).num_restarts == 1

    os.kill(second, 9)  # and again: the worker that adopted it still owns it
    assert wait_until(lambda: len(_pids(path)) == 3, BOUND_S), "no second restart"
    third = minray.get(minray.get_actor("kept").pid.remote(), timeout=BOUND_S)

    os.kill(third, 9)  # max_restarts=2: it is dead now, and says why
    with pytest.raises(minray.exceptions.RayActorError):
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            minray.get(actor.pid.remote(), timeout=BOUND_S)
            time.sleep(0.1)
    with pytest.raises(ValueError):
        minray.get_actor("kept")


@minray.remote(num_cpus=1)
def _hold_cpu(path: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("cluster", [{"num_cpus": 2}], indirect=True)
def test_a_detached_actor_starts_when_its_creator_exits_before_it_could(cluster, tmp_path):
    """The creator asks for a worker for it while none is free, then exits: the actor
    must still be created once a CPU frees up (the creator's own, here)."""
    path = str(tmp_path / "actor")
    release = str(tmp_path / "release")
    hog = _hold_cpu.remote(release)
    try:
        with pytest.raises(minray.exceptions.WorkerCrashedError):
            minray.get(_create_and_exit.remote(path, "late", {"num_cpus": 1}, False), timeout=60)
        actor_pid = pid_in(path, BOUND_S)
        actor = minray.get_actor("late")
        assert minray.get(actor.pid.remote(), timeout=BOUND_S) == actor_pid
    finally:
        open(release, "w").close()
    minray.get(hog, timeout=BOUND_S)
    minray.kill(actor)
    assert wait_until(lambda: _gone(actor_pid), BOUND_S)


@minray.remote
def _create_on_this_node(path: str) -> str:
    """A task on the second node creates a detached actor there: that node is its home."""
    here = minray.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(here, soft=True)  # may restart elsewhere
    actor = _Counter.options(
        name="homeless", lifetime="detached", max_restarts=1, scheduling_strategy=strategy
    ).remote(path)
    minray.get(actor.pid.remote())
    return here


def test_a_detached_actor_restarts_elsewhere_when_its_home_node_dies(tmp_path):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        node = cluster.add_node(num_cpus=2, resources={"second": 1})
        cluster.wait_for_nodes()
        cluster.connect()
        path = str(tmp_path / "actor")
        home = minray.get(_create_on_this_node.options(resources={"second": 1}).remote(path))
        assert home == node.node_id
        first = _pids(path)[0]

        cluster.remove_node(node, allow_graceful=False)  # the actor's home and host
        assert wait_until(lambda: _gone(first), BOUND_S)
        assert wait_until(lambda: len(_pids(path)) == 2, BOUND_S), "it did not restart"
        actor = minray.get_actor("homeless")
        assert minray.get(actor.pid.remote(), timeout=BOUND_S) == _pids(path)[1]
        assert minray.get(actor.restarted.remote(), timeout=BOUND_S) is True
        state = actor_state(actor._actor_id.hex())
        assert (state.state, state.node_id) == ("ALIVE", cluster.head_node.node_id)

        minray.kill(actor)
        with pytest.raises(ValueError):
            minray.get_actor("homeless")
    finally:
        minray.shutdown()
        cluster.shutdown()


@minray.remote(resources={"far": 1}, num_cpus=0)
class _SlowStart:
    def __init__(self, path: str, seconds: float):
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(seconds)

    def pid(self) -> int:
        return os.getpid()


@minray.remote(max_retries=0, num_cpus=0)
def _create_far_and_exit(path: str) -> None:
    """The creator exits while the actor's ``__init__`` runs on another node."""
    _SlowStart.options(name="slow", lifetime="detached").remote(path, 3.0)
    pid_in(path, BOUND_S)  # its __init__ has begun over there
    os._exit(1)


@pytest.mark.parametrize("creator_on", ["head", "far"])
def test_a_detached_actor_is_created_once_when_its_creator_exits_during_init(tmp_path, creator_on):
    """On another node than its creator's ("head": the home hears of the actor's worker
    there before the creator does, ActorUpdate "placed") or on the same ("far": the home
    asks the worker, CreationReceived), the actor is not created a second time."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        far = cluster.add_node(num_cpus=1, resources={"far": 2})  # room for a second one
        cluster.wait_for_nodes()
        cluster.connect()
        node = cluster.head_node if creator_on == "head" else far
        here = NodeAffinitySchedulingStrategy(node.node_id, soft=False)
        path = str(tmp_path / "actor")
        with pytest.raises(minray.exceptions.WorkerCrashedError):
            creator = _create_far_and_exit.options(scheduling_strategy=here)
            minray.get(creator.remote(path), timeout=60)
        actor = minray.get_actor("slow")
        assert minray.get(actor.pid.remote(), timeout=BOUND_S) == _pids(path)[0]
        time.sleep(2.0)  # a second creation, had there been one, would have begun by now
        assert len(_pids(path)) == 1, f"created more than once: {_pids(path)}"
        state = actor_state(actor._actor_id.hex())
        assert (state.state, state.node_id, state.num_restarts) == ("ALIVE", far.node_id, 0)
        minray.kill(actor)
    finally:
        minray.shutdown()
        cluster.shutdown()
