"""Objects move between nodes: a node that needs an object another node holds pulls a
copy into its own shared memory, once however many readers ask, and the copy goes
when the object is freed. The second node is at 127.0.0.2, so it, its workers and
the copies are reached over TCP, as on another machine."""

from __future__ import annotations

import numpy as np
import pytest

import minray
from minray.exceptions import ObjectLostError
from minray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .cluster_helpers import (
    live_node_info,
    live_used_bytes,
    two_node_cluster,
    wait_until,
)

MB = 1_000_000


@pytest.fixture(params=["127.0.0.2", "127.0.0.1"], ids=["tcp", "unix"])
def two_nodes(request, monkeypatch):
    """A head (1 CPU) and a second node (2 CPUs) at the given address; a driver on the head."""
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    yield from two_node_cluster({"num_cpus": 2, "node_ip_address": request.param})


def on(node) -> NodeAffinitySchedulingStrategy:
    return NodeAffinitySchedulingStrategy(node.node_id, soft=False)


@minray.remote
def checksum(array) -> tuple[str, int]:
    return minray.get_runtime_context().get_node_id(), int(array.sum())


@minray.remote
def make(n: int, fill: int):
    return np.full(n, fill, dtype=np.uint8)


def one_copy(used: float, nbytes: int, objects: int = 1) -> bool:
    """``used`` is the bytes of ``objects`` segments holding ``nbytes`` (plus headers)."""
    return nbytes <= used <= nbytes + objects * 4096


def test_a_put_array_is_pulled_to_the_node_that_reads_it_once(two_nodes):
    cluster, node = two_nodes
    if node.node_ip_address != "127.0.0.1":  # its processes listen on TCP, at its address
        assert live_node_info(node)["NodeManagerPort"] > 0
    array = np.arange(20 * MB, dtype=np.uint8)
    ref = minray.put(array)
    expected = int(array.sum())
    # four readers on the second node at once, then four more: one copy there
    there = checksum.options(scheduling_strategy=on(node))
    first = minray.get([there.remote(ref) for _ in range(4)], timeout=30)
    again = minray.get([there.remote(ref) for _ in range(4)], timeout=30)
    assert first + again == [(node.node_id, expected)] * 8
    assert one_copy(live_used_bytes(node), array.nbytes)
    del ref
    assert wait_until(lambda: live_used_bytes(node) == 0)
    assert wait_until(lambda: live_used_bytes(cluster.head_node) == 0)


def test_a_large_result_made_on_another_node_is_read_by_the_driver(two_nodes):
    cluster, node = two_nodes
    refs = [make.options(scheduling_strategy=on(node)).remote(8 * MB, i) for i in range(3)]
    values = minray.get(refs, timeout=30)
    assert [(int(v[0]), int(v[-1]), v.nbytes) for v in values] == [(i, i, 8 * MB) for i in range(3)]
    head = cluster.head_node
    assert one_copy(live_used_bytes(head), 3 * 8 * MB, 3)  # the copies, on the driver's node
    # a task on the head reads the same copy; another node's task reads the original
    assert minray.get(checksum.options(scheduling_strategy=on(head)).remote(refs[2])) == (
        head.node_id,
        2 * 8 * MB,
    )
    assert one_copy(live_used_bytes(head), 3 * 8 * MB, 3)
    del values, refs
    assert wait_until(lambda: live_used_bytes(node) == 0 and live_used_bytes(head) == 0)


def test_an_object_whose_only_node_died_is_lost_with_the_reason(two_nodes):
    cluster, node = two_nodes
    ref = make.options(scheduling_strategy=on(node), max_retries=0).remote(4 * MB, 7)
    minray.wait([ref], timeout=30)
    cluster.remove_node(node, allow_graceful=False)
    assert wait_until(lambda: node.node_id not in cluster.alive_node_ids())
    with pytest.raises(ObjectLostError, match="node died.*max_retries=0"):
        minray.get(ref, timeout=30)  # (ObjectReconstructionFailedMaxAttemptsExceededError)


def test_a_copy_survives_the_death_of_the_node_it_came_from(two_nodes):
    cluster, node = two_nodes
    ref = make.options(scheduling_strategy=on(node)).remote(4 * MB, 9)
    assert int(minray.get(ref, timeout=30)[0]) == 9  # the head has a copy now
    cluster.remove_node(node, allow_graceful=False)
    assert wait_until(lambda: node.node_id not in cluster.alive_node_ids())
    assert int(minray.get(ref, timeout=30)[-1]) == 9
    del ref  # its holder, which knew where copies went, is dead: the copy goes anyway
    assert wait_until(lambda: live_used_bytes(cluster.head_node) == 0)


def test_a_task_goes_where_its_large_argument_is_when_that_node_has_room(two_nodes):
    cluster, node = two_nodes
    big = make.options(scheduling_strategy=on(node)).remote(16 * MB, 3)
    minray.wait([big], timeout=30)
    # no strategy: the head (the driver's node) has room too, but the argument is there
    assert minray.get(checksum.remote(big), timeout=30) == (node.node_id, 3 * 16 * MB)
    assert live_used_bytes(cluster.head_node) == 0  # nothing was copied to the head
