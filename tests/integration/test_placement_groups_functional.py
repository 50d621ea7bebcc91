"""Placement groups on a node: reserve, run inside bundles, report, wait, remove."""

from __future__ import annotations

import os
import time

import pytest

import minray
from minray.exceptions import ActorDiedError, GetTimeoutError, TaskUnschedulableError
from minray.util.placement_group import (
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from minray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)


@minray.remote(num_cpus=1)
def pid():
    return os.getpid()


@pytest.mark.parametrize("cluster", [{"num_cpus": 4}], indirect=True)
def test_a_group_reserves_its_bundles_and_tasks_run_inside_them(cluster):
    group = placement_group([{"CPU": 1}, {"CPU": 2}], strategy="PACK", name="pair")
    assert group.wait(10)
    assert minray.get(group.ready(), timeout=10) == group
    assert minray.available_resources()["CPU"] == 1.0
    assert minray.cluster_resources()[f"CPU_group_{group.id.hex()}"] == 3.0
    in_bundle = pid.options(scheduling_strategy=PlacementGroupSchedulingStrategy(group, 1))
    assert isinstance(minray.get(in_bundle.remote(), timeout=10), int)
    anywhere_in_it = pid.options(scheduling_strategy=PlacementGroupSchedulingStrategy(group))
    assert minray.get([anywhere_in_it.remote() for _ in range(6)], timeout=20)

    table = placement_group_table(group)
    assert table["state"] == "CREATED" and table["strategy"] == "PACK"
    assert table["bundles"] == {0: {"CPU": 1.0}, 1: {"CPU": 2.0}}
    assert table["name"] == "pair"
    assert get_placement_group("pair") == group
    assert group.id.hex() in placement_group_table()

    remove_placement_group(group)
    assert placement_group_table(group)["state"] == "REMOVED"
    assert minray.available_resources()["CPU"] == 4.0
    assert not any("_group_" in name for name in minray.cluster_resources())
    with pytest.raises(ValueError, match="Failed to look up placement group"):
        get_placement_group("pair")


@pytest.mark.parametrize("cluster", [{"num_cpus": 2}], indirect=True)
def test_a_bundle_holds_its_cpus_so_tasks_in_it_queue_behind_each_other(cluster):
    group = placement_group([{"CPU": 1}])
    assert group.wait(10)
    strategy = PlacementGroupSchedulingStrategy(group, 0)

    @minray.remote(num_cpus=1)
    def hold(seconds):
        import time

        time.sleep(seconds)
        return os.getpid()

    first = hold.options(scheduling_strategy=strategy).remote(1.5)
    second = hold.options(scheduling_strategy=strategy).remote(0)
    with pytest.raises(GetTimeoutError):
        minray.get(second, timeout=0.5)  # the bundle's one CPU is busy
    assert minray.get(pid.remote(), timeout=10)  # outside the group there is room
    assert minray.get([first, second], timeout=20)


@pytest.mark.parametrize("cluster", [{"num_cpus": 2}], indirect=True)
def test_a_group_that_does_not_fit_yet_waits_and_is_placed_when_resources_free(cluster):
    first = placement_group([{"CPU": 2}])
    assert first.wait(10)
    second = placement_group([{"CPU": 1}])
    assert not second.wait(0.5)
    assert placement_group_table(second)["state"] == "PENDING"
    remove_placement_group(first)
    assert second.wait(10)


@pytest.mark.parametrize("cluster", [{"num_cpus": 4}], indirect=True)
def test_a_group_that_can_never_fit_is_reported_and_stays_pending(cluster, minray_log):
    group = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    assert "cannot be scheduled" in minray_log.text and "STRICT_SPREAD" in minray_log.text
    assert not group.wait(0.5)
    assert placement_group_table(group)["infeasible_reason"]
    big = placement_group([{"CPU": 64}])
    assert not big.wait(0.2)


@pytest.mark.parametrize("cluster", [{"num_cpus": 2}], indirect=True)
def test_removing_a_group_stops_its_actors_and_returns_their_resources(cluster):
    group = placement_group([{"CPU": 1}])
    assert group.wait(10)

    @minray.remote(num_cpus=1)
    class Inside:
        def ping(self):
            return "pong"

    actor = Inside.options(scheduling_strategy=PlacementGroupSchedulingStrategy(group, 0)).remote()
    assert minray.get(actor.ping.remote(), timeout=10) == "pong"
    remove_placement_group(group)  # asynchronous, as in Ray
    deadline = time.monotonic() + 10
    with pytest.raises(ActorDiedError, match="placement group was removed"):
        while time.monotonic() < deadline:
            minray.get(actor.ping.remote(), timeout=10)
            time.sleep(0.05)
    assert minray.available_resources()["CPU"] == 2.0


@pytest.mark.parametrize(
    "bundles, strategy, error, match",
    [
        ([], "PACK", ValueError, "non-empty list"),
        ([{"CPU": 1}], "EVERYWHERE", ValueError, "Invalid placement group strategy"),
        ([{"CPU": -1}], "PACK", ValueError, "non-negative"),
    ],
)
def test_bad_groups_are_refused_before_anything_starts(bundles, strategy, error, match):
    with pytest.raises(error, match=match):
        placement_group(bundles, strategy=strategy)
    assert not minray.is_initialized()


@pytest.mark.parametrize("cluster", [{"num_cpus": 2}], indirect=True)
def test_names_are_unique_and_bundle_indexes_checked(cluster):
    group = placement_group([{"CPU": 1}], name="only")
    with pytest.raises(ValueError, match="same name already exists"):
        placement_group([{"CPU": 1}], name="only")
    with pytest.raises(ValueError, match="out of range"):
        pid.options(scheduling_strategy=PlacementGroupSchedulingStrategy(group, 3))


def test_node_affinity_on_one_node_runs_here_and_fails_for_a_node_that_is_not_there(cluster):
    here = minray.get_runtime_context().get_node_id()
    on_this_node = pid.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, False))
    assert minray.get(on_this_node.remote(), timeout=10)
    elsewhere = "ab" * 28
    soft = pid.options(scheduling_strategy=NodeAffinitySchedulingStrategy(elsewhere, True))
    assert minray.get(soft.remote(), timeout=10)
    hard = pid.options(scheduling_strategy=NodeAffinitySchedulingStrategy(elsewhere, False))
    with pytest.raises(TaskUnschedulableError, match="soft=False.*not alive"):
        minray.get(hard.remote(), timeout=10)
    assert minray.get(pid.options(scheduling_strategy="SPREAD").remote(), timeout=10)


@minray.remote(num_cpus=1)
def group_of_child(depth: int):
    """The placement group of this task, and of the child and grandchild it starts."""
    here = get_current_placement_group()
    below = minray.get(group_of_child.remote(depth - 1)) if depth else []
    return [here, *below]


@minray.remote(num_cpus=0)
def group_of_free_child():
    return get_current_placement_group(), minray.get(group_of_child.options(num_cpus=0).remote(0))


@pytest.mark.parametrize("cluster", [{"num_cpus": 3}], indirect=True)
def test_children_run_in_the_group_of_a_parent_that_captures_them(cluster):
    group = placement_group([{"CPU": 3}])
    assert group.wait(10)
    capture = PlacementGroupSchedulingStrategy(group, placement_group_capture_child_tasks=True)
    # every CPU is in the group: the child and grandchild can only run inside it
    groups = minray.get(group_of_child.options(scheduling_strategy=capture).remote(2), timeout=20)
    assert groups == [group, group, group]
    assert get_current_placement_group() is None  # the driver is in no group
    assert minray.get_runtime_context().should_capture_child_tasks_in_placement_group

    no_capture = PlacementGroupSchedulingStrategy(group)
    mine, childs = minray.get(
        group_of_free_child.options(scheduling_strategy=no_capture).remote(), timeout=20
    )
    assert mine == group and childs == [None]


@pytest.mark.parametrize("cluster", [{"num_cpus": 2}], indirect=True)
def test_an_actor_that_captures_runs_its_tasks_and_actors_in_its_group(cluster):
    group = placement_group([{"CPU": 2}])
    assert group.wait(10)

    @minray.remote(num_cpus=1)
    class Parent:
        def child_groups(self):
            context = minray.get_runtime_context()
            return (
                context.get_placement_group_id(),
                minray.get(group_of_child.remote(0)),
                context.should_capture_child_tasks_in_placement_group,
            )

    capture = PlacementGroupSchedulingStrategy(group, 0, placement_group_capture_child_tasks=True)
    parent = Parent.options(scheduling_strategy=capture).remote()
    group_id, children, captures = minray.get(parent.child_groups.remote(), timeout=20)
    assert group_id == group.id.hex() and children == [group] and captures
