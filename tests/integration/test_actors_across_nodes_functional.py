"""Actors across the nodes of a cluster: names unique cluster-wide, found by name from any
node, handles passed to other nodes, killed from anywhere, and dead with their node.
The second node is at 127.0.0.2, reached over TCP as another machine would be."""

from __future__ import annotations

import time

import pytest

import minray
from minray.exceptions import ActorAlreadyExistsError, ActorDiedError
from minray.util import list_named_actors
from minray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .cluster_helpers import live_node_info, process_tree, two_node_cluster, wait_until


@pytest.fixture
def two_nodes(monkeypatch):
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    monkeypatch.setenv("MINRAY_NODE_DEATH_TIMEOUT_S", "2")
    yield from two_node_cluster(
        {"num_cpus": 2, "resources": {"far": 4}, "node_ip_address": "127.0.0.2"}
    )


@minray.remote(num_cpus=0)
class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k: int) -> int:
        self.n += k
        return self.n

    def node(self) -> str:
        return minray.get_runtime_context().get_node_id()


@minray.remote(resources={"far": 1})
def far_call_by_name(name: str, k: int) -> tuple[int, list]:
    return minray.get(minray.get_actor(name).add.remote(k)), list_named_actors()


@minray.remote(resources={"far": 1})
def far_call_handle(counter, k: int) -> int:
    return minray.get(counter.add.remote(k))


@minray.remote(resources={"far": 1})
def far_create(name: str) -> tuple[str, object]:
    counter = Counter.options(name=name, lifetime="detached").remote()
    return minray.get(counter.node.remote()), counter


def test_an_actor_is_found_by_name_and_by_handle_from_another_node(two_nodes):
    cluster, node = two_nodes
    counter = Counter.options(name="c").remote()
    assert minray.get(counter.add.remote(1)) == 1
    assert minray.get(far_call_handle.remote(counter, 2)) == 3
    assert minray.get(far_call_by_name.remote("c", 3)) == (6, ["c"])


def test_names_are_unique_across_the_cluster(two_nodes):
    cluster, node = two_nodes
    where, far = minray.get(far_create.remote("shared"))
    assert where == node.node_id  # created by a task there, so at home there
    with pytest.raises(ActorAlreadyExistsError, match="already taken"):
        Counter.options(name="shared").remote()
    same = Counter.options(name="shared", get_if_exists=True).remote()
    assert minray.get(same.add.remote(5)) == 5
    assert minray.get(minray.get_actor("shared").add.remote(1)) == 6
    assert list_named_actors() == ["shared"]
    minray.kill(minray.get_actor("shared"))  # killed from another node than its home
    with pytest.raises(ActorDiedError):
        minray.get(far.add.remote(1), timeout=30)
    deadline = time.monotonic() + 10
    while list_named_actors() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list_named_actors() == []  # the name is free again


def test_an_actor_dies_with_its_home_node_and_its_name_is_free(two_nodes):
    cluster, node = two_nodes
    _, far = minray.get(far_create.remote("homeless"))
    assert minray.get(far.add.remote(1)) == 1
    cluster.remove_node(node, allow_graceful=False)
    with pytest.raises(ActorDiedError):
        minray.get(far.add.remote(1), timeout=30)
    deadline = time.monotonic() + 15
    while "homeless" in list_named_actors() and time.monotonic() < deadline:
        time.sleep(0.1)
    again = Counter.options(name="homeless").remote()
    assert minray.get(again.add.remote(7)) == 7


def far_available(node) -> float:
    return live_node_info(node)["AvailableResources"].get("far", 0.0)


def test_an_actor_is_placed_on_the_node_that_has_room_for_it(two_nodes):
    cluster, node = two_nodes
    counter = Counter.options(name="placed", resources={"far": 1}).remote()
    assert minray.get(counter.node.remote(), timeout=30) == node.node_id
    assert minray.get(counter.add.remote(2)) == 2
    assert minray.get(far_call_by_name.remote("placed", 3)) == (5, ["placed"])
    assert wait_until(lambda: far_available(node) == 3.0)  # the actor holds one
    pinned = Counter.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, False)
    )
    assert minray.get(pinned.remote().node.remote(), timeout=30) == node.node_id
    minray.kill(counter)
    with pytest.raises(ActorDiedError):
        minray.get(counter.add.remote(1), timeout=30)
    assert wait_until(lambda: far_available(node) == 4.0)  # given back on its host


def test_an_actor_placed_elsewhere_goes_when_its_handles_do(two_nodes):
    cluster, node = two_nodes
    counter = Counter.options(resources={"far": 2}).remote()
    assert minray.get(counter.add.remote(1), timeout=30) == 1
    assert wait_until(lambda: far_available(node) == 2.0)
    del counter
    assert wait_until(lambda: far_available(node) == 4.0)


@minray.remote(resources={"far": 1})
class Farewell:
    def __init__(self, path: str):
        self.path = path

    def node(self) -> str:
        return minray.get_runtime_context().get_node_id()

    def __ray_shutdown__(self):
        with open(self.path, "w") as f:
            f.write("shutdown")


def test_an_actor_placed_elsewhere_runs_ray_shutdown_when_its_handles_go(two_nodes, tmp_path):
    cluster, node = two_nodes
    path = tmp_path / "farewell"
    actor = Farewell.remote(str(path))
    assert minray.get(actor.node.remote(), timeout=30) == node.node_id
    del actor
    assert wait_until(lambda: path.exists() and path.read_text() == "shutdown")
    assert wait_until(lambda: far_available(node) == 4.0)


def test_an_actor_whose_host_node_dies_restarts_on_another(two_nodes):
    cluster, node = two_nodes
    spare = cluster.add_node(num_cpus=1, resources={"far": 4}, node_ip_address="127.0.0.3")
    prefer = NodeAffinitySchedulingStrategy(node.node_id, soft=True)
    counter = Counter.options(max_restarts=1, resources={"far": 1}, scheduling_strategy=prefer)
    counter = counter.remote()
    assert minray.get(counter.node.remote(), timeout=30) == node.node_id
    assert minray.get(counter.add.remote(5)) == 5
    cluster.remove_node(node, allow_graceful=False)
    assert minray.get(counter.node.remote(), timeout=60) == spare.node_id
    assert minray.get(counter.add.remote(1)) == 1  # a new instance: its state starts over
    cluster.remove_node(spare, allow_graceful=False)
    with pytest.raises(ActorDiedError):  # no restarts left
        minray.get(counter.add.remote(1), timeout=60)


def test_a_call_to_an_actor_on_a_hung_node_goes_to_its_restart_elsewhere(two_nodes):
    cluster, node = two_nodes
    spare = cluster.add_node(num_cpus=1, resources={"far": 4}, node_ip_address="127.0.0.3")
    prefer = NodeAffinitySchedulingStrategy(node.node_id, soft=True)
    counter = Counter.options(
        max_restarts=1, max_task_retries=1, resources={"far": 1}, scheduling_strategy=prefer
    ).remote()
    assert minray.get(counter.node.remote(), timeout=30) == node.node_id
    tree = process_tree(node)
    for proc in tree:  # the machine hangs: its connections stay open, nobody answers
        proc.suspend()
    try:
        # declared dead by the heartbeat timeout; the call then goes to the restarted actor
        assert minray.get(counter.node.remote(), timeout=30) == spare.node_id
    finally:
        for proc in tree:
            proc.resume()
    assert wait_until(lambda: not node.alive(), 15)  # it learns it is dead, and stops
    cluster.worker_nodes.remove(node)
