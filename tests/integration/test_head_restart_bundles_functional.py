"""After a head restart the member nodes say which placement-group bundles they hold,
and the head makes its groups agree with them (head/bundle_reconcile.py): a group
keeps its bundles where they were, tasks run in them, removing it frees the member,
and bundles of a group the restarted head does not know are given back."""

from __future__ import annotations

import os
import sqlite3
import time

import pytest

import minray
from minray.util.placement_group import (
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from minray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from .cluster_helpers import live_node_info, restartable_cluster, wait_until

BOUND_S = 60.0


@pytest.fixture
def cluster(monkeypatch):
    """A head (1 CPU) and a member node (2 CPUs and a "member" resource)."""
    yield from restartable_cluster(monkeypatch)


@minray.remote(num_cpus=0.5)
def hold(started: str, release: str) -> str:
    """Runs in a bundle until ``release`` exists (at most BOUND_S); says it started."""
    open(started, "w").close()
    deadline = time.monotonic() + BOUND_S
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    return minray.get_runtime_context().get_node_id()


@minray.remote(num_cpus=0.5)
def node_of_task() -> str:
    return minray.get_runtime_context().get_node_id()


@minray.remote(num_cpus=0, resources={"member": 0.1})
class Launcher:
    """On the member node, and at home there: owns a task running there in a bundle (a
    driver connected through the head would go with the head)."""

    def start(self, group, index: int, started: str, release: str) -> None:
        strategy = PlacementGroupSchedulingStrategy(group, index)
        self.running = hold.options(scheduling_strategy=strategy).remote(started, release)

    def result(self) -> str:
        return minray.get(self.running, timeout=BOUND_S)


@minray.remote(num_cpus=0, resources={"member": 0.1})
def launch_on_member(group, index: int, started: str, release: str) -> None:
    """Create the launcher from the member node (its home) and start its task."""
    launcher = Launcher.options(name="launcher", lifetime="detached").remote()
    minray.get(launcher.start.remote(group, index, started, release), timeout=BOUND_S)


def in_bundle(group, index: int):
    return node_of_task.options(scheduling_strategy=PlacementGroupSchedulingStrategy(group, index))


def kill_and_restart_head(cluster) -> str:
    """SIGKILL the head (the driver disconnects first), start it again, reconnect; the
    new head node's id."""
    minray.shutdown()
    cluster._connected = False
    cluster.remove_node(cluster.head_node, allow_graceful=False)
    head = cluster.restart_head(num_cpus=1)
    cluster.wait_for_nodes(timeout=BOUND_S)
    cluster.connect(namespace="bundles")
    return head.node_id


def member_cpus(member) -> tuple[dict, dict]:
    """The member's (total, free) CPUs and bundle resources, by its own count."""
    info = live_node_info(member)
    return info["Resources"], info["AvailableResources"]


def test_a_group_keeps_its_bundles_across_a_head_restart_and_removal_frees_them(cluster, tmp_path):
    cluster, member = cluster
    cluster.connect(namespace="bundles")
    group = placement_group(
        [{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD", name="spread", lifetime="detached"
    )
    assert group.wait(BOUND_S)
    nodes = placement_group_table(group)["bundles_to_node_id"]
    on_member = next(i for i, node in nodes.items() if node == member.node_id)
    started, release = str(tmp_path / "started"), str(tmp_path / "release")
    minray.get(launch_on_member.remote(group, on_member, started, release), timeout=BOUND_S)
    assert wait_until(lambda: os.path.exists(started), BOUND_S), (
        "the task in the bundle did not start"
    )

    new_head = kill_and_restart_head(cluster)
    group = get_placement_group("spread")
    assert wait_until(lambda: placement_group_table(group)["state"] == "CREATED", BOUND_S)
    nodes = placement_group_table(group)["bundles_to_node_id"]
    assert nodes[on_member] == member.node_id  # where it was; the old head's moved
    assert nodes[1 - on_member] == new_head
    # tasks scheduled into its bundles run there, beside the one still running
    assert minray.get(in_bundle(group, on_member).remote(), timeout=BOUND_S) == member.node_id
    assert minray.get(in_bundle(group, 1 - on_member).remote(), timeout=BOUND_S) == new_head
    launcher = minray.get_actor("launcher")
    open(release, "w").close()
    assert minray.get(launcher.result.remote(), timeout=BOUND_S) == member.node_id

    # a new group needing both of the member's CPUs waits: the bundle still holds one
    whole = placement_group([{"CPU": 2}], strategy="STRICT_PACK", name="whole")
    assert not whole.wait(1.0)
    total, free = member_cpus(member)
    assert free["CPU"] == 1.0 and total["CPU"] == 2.0
    remove_placement_group(group)
    assert whole.wait(BOUND_S)  # the removal gave the member its CPU back
    assert placement_group_table(whole)["bundles_to_node_id"] == {0: member.node_id}
    remove_placement_group(whole)
    minray.kill(launcher)

    def all_back() -> bool:
        total, free = member_cpus(member)
        return free == total and not [name for name in total if "_group_" in name]

    assert wait_until(all_back, BOUND_S), member_cpus(member)


def test_bundles_of_a_group_the_restarted_head_does_not_know_are_given_back(cluster):
    cluster, member = cluster
    cluster.connect(namespace="bundles")
    forgotten = placement_group([{"CPU": 2}], strategy="STRICT_PACK", lifetime="detached")
    assert forgotten.wait(BOUND_S)
    assert placement_group_table(forgotten)["bundles_to_node_id"] == {0: member.node_id}
    minray.shutdown()
    cluster._connected = False
    cluster.remove_node(cluster.head_node, allow_graceful=False)
    # the saved tables predate the group (as if the head died before saving it)
    db = sqlite3.connect(cluster._saved_tables)
    db.execute("DELETE FROM groups")
    db.commit()
    db.close()
    cluster.restart_head(num_cpus=1)
    cluster.wait_for_nodes(timeout=BOUND_S)

    def given_back() -> bool:
        total, free = member_cpus(member)
        return free.get("CPU") == 2.0 and not [name for name in total if "_group_" in name]

    assert wait_until(given_back, BOUND_S), member_cpus(member)
    cluster.connect(namespace="bundles")
    assert placement_group_table() == {}
    again = placement_group([{"CPU": 2}], strategy="STRICT_PACK")
    assert again.wait(BOUND_S)
    remove_placement_group(again)
