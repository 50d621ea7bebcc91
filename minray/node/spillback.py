"""When a lease request should go to another node (spillback), and to which.

The node asks this before queueing a task's lease request. With one node, or
when the request fits here now, the answer is "here". Otherwise the cluster
scheduling choice (head/cluster_scheduler.py) picks, from the cluster view the
node holds (the head's table, or the last pushed view), a node that has room
now, or the only nodes where it can ever fit. The view may be a second old: the
chosen node grants or queues the request itself (``spilled`` requests are never
sent on again), so a stale view costs a wait, never a loop.

Actors are not spilled yet: the actor directory lives in each node.
Nodes are reached by their Unix socket, so spillback works between nodes of
one machine; across machines it needs the nodes' TCP listeners (not built).
"""

from __future__ import annotations

import os

from ..head.cluster_scheduler import choose_node


def reachable_view(nodes: list[dict], local_id: str, local: dict) -> tuple[dict, dict]:
    """``({node_id: (total, available)}, {node_id: address})`` of the live nodes this
    process can reach, the local one with its live figures."""
    view, addresses = {}, {}
    for node in nodes:
        node_hex = node["NodeID"]
        if node_hex == local_id:
            node = local
        address = node.get("RayletSocketName", "")
        if not node.get("Alive") or not address.startswith("unix:"):
            continue
        if node_hex != local_id and not os.path.exists(address[len("unix:") :]):
            continue
        key = bytes.fromhex(node_hex)
        view[key] = (node["Resources"], node.get("AvailableResources", {}))
        addresses[key] = address
    return view, addresses


def spill_target(
    shape: dict, nodes: list[dict], local_id: str, local: dict
) -> tuple[bytes, str] | None:
    """``(node_id, address)`` of the node to send this request to, or None: keep it."""
    view, addresses = reachable_view(nodes, local_id, local)
    if len(view) < 2:
        return None
    me = bytes.fromhex(local_id)
    choice = choose_node(shape, view, me)
    if choice.node_id is None or choice.node_id == me:
        return None
    return choice.node_id, addresses[choice.node_id]
