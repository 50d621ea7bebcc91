"""Actors across the nodes of a cluster: names unique cluster-wide, found by name from any
node, handles passed to other nodes, killed from anywhere, and dead with their node.
The second node is at 127.0.0.2, reached over TCP as another machine would be."""

from __future__ import annotations

import time

import pytest

import minray
from minray.cluster_utils import Cluster
from minray.exceptions import ActorAlreadyExistsError, ActorDiedError
from minray.util import list_named_actors

from .cluster_helpers import segments_of


@pytest.fixture
def two_nodes(monkeypatch):
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    node = cluster.add_node(num_cpus=2, resources={"far": 4}, node_ip_address="127.0.0.2")
    cluster.wait_for_nodes()
    cluster.connect()
    yield cluster, node
    nodes = cluster.list_all_nodes()
    cluster.shutdown()
    for n in nodes:
        assert not segments_of(n)


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
