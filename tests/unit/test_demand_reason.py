"""`minray status`'s reason for a queued demand (cluster_cli.demand_reason)."""

from __future__ import annotations

from minray.cluster_cli import demand_reason


def node(total: dict, free: dict) -> dict:
    return {"Resources": total, "AvailableResources": free}


def test_a_demand_no_node_can_fit_is_infeasible():
    nodes = [node({"CPU": 2}, {"CPU": 2})]
    assert demand_reason({"CPU": 4}, True, nodes).startswith("INFEASIBLE")


def test_a_demand_a_node_could_fit_later_is_busy_not_infeasible():
    nodes = [node({"CPU": 2}, {"CPU": 0}), node({"CPU": 8}, {"CPU": 1})]
    assert demand_reason({"CPU": 4}, True, nodes).startswith("resources busy")


def test_a_demand_with_room_somewhere_is_being_started():
    nodes = [node({"CPU": 2}, {"CPU": 0}), node({"CPU": 2}, {"CPU": 2})]
    assert demand_reason({"CPU": 1}, False, nodes).startswith("a node has room")


def test_a_placement_group_demand_waits_for_its_bundle():
    assert "placement group" in demand_reason({"CPU_group_abc": 1}, False, [])
