"""Tasks spill over to other nodes of a cluster (cluster_utils.Cluster on one machine):
when the driver's node is full, for resources only another node has, with large
results read back and freed on the node that holds them, and retried elsewhere
when that node dies."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import minray
from minray.cluster_utils import Cluster
from minray.exceptions import TaskUnschedulableError
from minray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .cluster_helpers import live_used_bytes


@pytest.fixture
def two_nodes(monkeypatch):
    """A head with 1 CPU and a node with 2 CPUs and a custom resource; a driver on it."""
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    node = cluster.add_node(num_cpus=2, resources={"only_there": 1})
    cluster.wait_for_nodes()
    cluster.connect()
    yield cluster, node
    cluster.shutdown()
    leftovers = [n for n in os.listdir("/dev/shm") if n.startswith("minray_")]
    tags = {os.path.basename(x.session_dir)[-6:] for x in (node,)}
    assert not [n for n in leftovers if n[len("minray_") :][:6] in tags]


@minray.remote
def node_of(seconds: float = 0.0) -> str:
    time.sleep(seconds)
    return minray.get_runtime_context().get_node_id()


def test_tasks_spill_to_a_node_with_room_when_the_drivers_node_is_full(two_nodes):
    cluster, node = two_nodes
    started = time.monotonic()
    where = minray.get([node_of.remote(0.6) for _ in range(6)], timeout=30)
    assert set(where) == {cluster.head_node.node_id, node.node_id}
    assert where.count(node.node_id) >= 3
    assert time.monotonic() - started < 6 * 0.6  # not one after another on the head


def test_a_resource_only_another_node_has_sends_the_task_there(two_nodes):
    cluster, node = two_nodes
    there = node_of.options(resources={"only_there": 1})
    assert minray.get([there.remote() for _ in range(3)], timeout=30) == [node.node_id] * 3


def test_large_results_from_another_node_are_read_and_freed_where_they_live(two_nodes):
    cluster, node = two_nodes

    @minray.remote(resources={"only_there": 0.1})
    def big(n):
        return np.full(2_000_000, n, dtype=np.int64)

    refs = [big.remote(i) for i in range(3)]
    values = minray.get(refs, timeout=30)
    assert [int(v[0]) for v in values] == [0, 1, 2]
    assert live_used_bytes(node) >= 3 * 16_000_000
    del values, refs
    deadline = time.monotonic() + 10
    while live_used_bytes(node) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_used_bytes(node) == 0


def test_a_task_on_a_node_that_dies_is_retried_on_another(two_nodes, tmp_path):
    cluster, node = two_nodes
    marker = tmp_path / "started"

    @minray.remote(max_retries=2)
    def slow_once(path):
        if not os.path.exists(path):
            open(path, "w").close()
            time.sleep(30)  # the first run is killed with its node
        return minray.get_runtime_context().get_node_id()

    ref = slow_once.options(resources={"only_there": 0.5}).remote(str(marker))
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    cluster.remove_node(node, allow_graceful=False)
    # only the dead node had the resource: the retry waits, reported as infeasible,
    # until a node with it joins
    replacement = cluster.add_node(num_cpus=1, resources={"only_there": 1})
    assert minray.get(ref, timeout=30) == replacement.node_id


def test_spread_puts_tasks_on_every_node_and_affinity_picks_one(two_nodes):
    cluster, node = two_nodes
    spread = node_of.options(scheduling_strategy="SPREAD")
    assert set(minray.get([spread.remote(0.2) for _ in range(4)], timeout=30)) == {
        cluster.head_node.node_id,
        node.node_id,
    }
    there = node_of.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, False))
    assert minray.get([there.remote() for _ in range(3)], timeout=30) == [node.node_id] * 3
    cluster.remove_node(node, allow_graceful=True)
    with pytest.raises(TaskUnschedulableError, match="not alive"):
        minray.get(there.remote(), timeout=30)
    soft = NodeAffinitySchedulingStrategy(node.node_id, soft=True)
    assert minray.get(node_of.options(scheduling_strategy=soft).remote(), timeout=30) == (
        cluster.head_node.node_id
    )
