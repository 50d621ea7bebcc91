"""Placement groups across the nodes of a cluster: the head places bundles on several
nodes, tasks and actors run where their bundle is, removal gives every node its
resources back, and a dead node's bundles are placed again. The second node is at
127.0.0.2, reached over TCP as another machine would be."""

from __future__ import annotations

import pytest

import minray
from minray.exceptions import ActorDiedError
from minray.util.placement_group import (
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from minray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from .cluster_helpers import two_node_cluster, wait_until


@pytest.fixture
def two_nodes(monkeypatch):
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    monkeypatch.setenv("MINRAY_NODE_DEATH_TIMEOUT_S", "2")
    yield from two_node_cluster({"num_cpus": 2, "node_ip_address": "127.0.0.2"})


@minray.remote(num_cpus=1)
def node_of_task() -> str:
    return minray.get_runtime_context().get_node_id()


@minray.remote(num_cpus=1)
class Where:
    def node(self) -> str:
        return minray.get_runtime_context().get_node_id()


def in_bundle(group, index: int = -1) -> PlacementGroupSchedulingStrategy:
    return PlacementGroupSchedulingStrategy(group, index)


def node_of_bundle(group, index: int) -> str:
    """The node a task run in bundle ``index`` ran on."""
    return minray.get(node_of_task.options(scheduling_strategy=in_bundle(group, index)).remote())


def cpus_free() -> float:
    return minray.available_resources().get("CPU", 0.0)


def test_strict_spread_puts_one_bundle_on_each_node_and_tasks_run_where_theirs_is(two_nodes):
    cluster, node = two_nodes
    head = cluster.head_node.node_id
    group = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    assert group.wait(10)
    assert minray.get(group.ready(), timeout=10) == group
    table = placement_group_table(group)
    assert table["state"] == "CREATED"
    assert sorted(table["bundles_to_node_id"].values()) == sorted([head, node.node_id])
    for index, where in table["bundles_to_node_id"].items():
        assert node_of_bundle(group, index) == where
    assert wait_until(lambda: minray.cluster_resources().get(f"CPU_group_{group.id.hex()}") == 2)
    assert wait_until(lambda: cpus_free() == 1.0)  # 3 CPUs, 2 in the group

    remove_placement_group(group)
    assert placement_group_table(group)["state"] == "REMOVED"
    assert wait_until(lambda: cpus_free() == 3.0)
    assert wait_until(lambda: not any("_group_" in r for r in minray.cluster_resources()))


def test_a_group_that_fits_only_on_the_other_node_goes_there_with_its_actor(two_nodes):
    cluster, node = two_nodes
    group = placement_group([{"CPU": 2}], strategy="STRICT_PACK")
    assert minray.get(group.ready(), timeout=10) == group  # asked here, placed there
    assert placement_group_table(group)["bundles_to_node_id"] == {0: node.node_id}
    actor = Where.options(scheduling_strategy=in_bundle(group, 0)).remote()
    assert minray.get(actor.node.remote(), timeout=10) == node.node_id
    remove_placement_group(group)
    with pytest.raises(ActorDiedError, match="placement group was removed"):
        for _ in range(200):
            minray.get(actor.node.remote(), timeout=10)
    assert wait_until(lambda: cpus_free() == 3.0)


def test_a_group_no_node_set_can_hold_waits_and_is_placed_when_a_node_joins(two_nodes, minray_log):
    cluster, _ = two_nodes
    group = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD")
    assert "cannot be scheduled" in minray_log.text
    assert not group.wait(0.5)
    assert placement_group_table(group)["infeasible_reason"]
    third = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.3")
    cluster.wait_for_nodes()
    assert group.wait(10)
    placed = placement_group_table(group)["bundles_to_node_id"]
    assert third.node_id in placed.values() and len(set(placed.values())) == 3


def test_bundles_on_a_dead_node_are_placed_again_and_the_rest_keep_running(two_nodes):
    cluster, node = two_nodes
    group = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="SPREAD")
    assert group.wait(10)
    placed = placement_group_table(group)["bundles_to_node_id"]
    on_head = next(i for i, n in placed.items() if n == cluster.head_node.node_id)
    survivor = Where.options(scheduling_strategy=in_bundle(group, on_head)).remote()
    assert minray.get(survivor.node.remote(), timeout=10) == cluster.head_node.node_id

    cluster.remove_node(node, allow_graceful=False)
    assert wait_until(lambda: placement_group_table(group)["state"] == "RESCHEDULING")
    replacement = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.3")
    assert group.wait(15)
    placed = placement_group_table(group)["bundles_to_node_id"]
    assert sorted(placed.values()) == sorted([cluster.head_node.node_id, replacement.node_id])
    assert minray.get(survivor.node.remote(), timeout=10) == cluster.head_node.node_id
    assert node_of_bundle(group, 1 - on_head) == replacement.node_id
