"""When a lease request should go to another node (spillback), and to which.

The node asks this before queueing a task's lease request. With one node, or
when the request fits here now, the answer is "here". Otherwise the cluster
scheduling choice (head/cluster_scheduler.py) picks, from the cluster view the
node holds (the head's table, or the last pushed view), a node that has room
now, or the only nodes where it can ever fit. The view may be a second old: the
chosen node grants or queues the request itself (``spilled`` requests are never
sent on again), so a stale view costs a wait, never a loop.

Actors' creation leases spill the same way (their record stays at home, see
node/actor_hosting.py).
Owners reach the chosen node by its Unix socket on the same machine, else by
TCP (protocol/reach.py).
"""

from __future__ import annotations

import time

from ..head.cluster_scheduler import NodeAffinity, choose_node
from ..protocol.reach import reach_address


def reachable_view(nodes: list[dict], local_id: str, local: dict) -> tuple[dict, dict]:
    """``({node_id: (total, available)}, {node_id: address})`` of the live nodes this
    node can reach, the local one with its live figures; the addresses are for this
    node's clients (same machine: Unix socket, else TCP)."""
    view, addresses = {}, {}
    local_ip = local.get("NodeManagerAddress", "")
    for node in nodes:
        node_hex = node["NodeID"]
        if node_hex == local_id:
            node = local
        address = reach_address(node, local_ip)
        if not node.get("Alive") or address is None:
            continue
        key = bytes.fromhex(node_hex)
        view[key] = (node["Resources"], node.get("AvailableResources", {}))
        addresses[key] = address
    return view, addresses


class SpillTally:
    """What this node sent to each other node since their figures were last heard.

    The view says what a node had free up to a heartbeat ago; requests spilled to
    it since then are taken off that, so a burst spreads over the nodes with room
    instead of all going to the first one."""

    def __init__(self, memory_s: float, clock=time.monotonic) -> None:
        self.memory_s = memory_s  #: by then the node's own figures include what we sent
        self._clock = clock
        self._sent: dict[bytes, tuple[float, dict[str, float]]] = {}
        self._seen: dict[bytes, dict] = {}

    def adjust(self, view: dict) -> dict:
        out, now = {}, self._clock()
        for node_id, (total, available) in view.items():
            fresh = self._seen.get(node_id) != available
            since, sent = self._sent.get(node_id, (now, {}))
            if fresh or now - since > self.memory_s:  # its figures caught up: count anew
                self._seen[node_id] = available
                self._sent.pop(node_id, None)
                sent = {}
            out[node_id] = (total, {k: v - sent.get(k, 0.0) for k, v in available.items()})
        return out

    def record(self, node_id: bytes, shape: dict) -> None:
        since, sent = self._sent.setdefault(node_id, (self._clock(), {}))
        for name, amount in shape.items():
            sent[name] = sent.get(name, 0.0) + amount


def pending_demands(requests: dict, scheduler, reasons: dict | None = None) -> list:
    """Queued lease requests by shape: ``[[shape, count, infeasible, reason], ...]``
    (infeasible: no resource of this node can ever fit it; reason: the one told the owner
    of the first of them, node/pending_notices.py, "" before the first pass), for
    ``minray status``."""
    counts: dict[tuple, list] = {}
    for key, (_, msg) in requests.items():
        shape = tuple(sorted(msg.resources.items()))
        entry = counts.setdefault(shape, [0, ""])
        entry[0] += 1
        entry[1] = entry[1] or (reasons or {}).get(key, "")
    out = []
    for shape, (count, reason) in counts.items():
        missing = [n for n in scheduler.missing(dict(shape)) if "_group_" not in n]
        out.append([dict(shape), count, bool(missing), reason])
    return out


class Unschedulable(Exception):
    """A hard node affinity that no live node can meet: the task must fail."""


def spill_target(
    shape: dict,
    nodes: list[dict],
    local_id: str,
    local: dict,
    tally: SpillTally | None = None,
    strategy=None,
    spread: dict | None = None,
    locality: dict | None = None,
) -> tuple[bytes, str] | None:
    """``(node_id, address)`` of the node to send this request to, or None: keep it.

    ``strategy``: None (DEFAULT), "SPREAD" (round-robin; ``spread["last"]`` keeps the
    node chosen last), or ``("affinity", node id hex, soft)``; raises Unschedulable
    for a hard affinity to a node that is gone or can never fit the request.
    ``locality``: {node id hex: bytes of the task's arguments held there} (DEFAULT
    prefers the node with the most, when it has room now)."""
    if isinstance(strategy, list):  # msgpack turned the tuple into a list
        strategy = tuple(strategy)
    view, addresses = reachable_view(nodes, local_id, local)
    me = bytes.fromhex(local_id)
    if strategy is None and len(view) < 2:
        return None
    if tally is not None:
        view = tally.adjust(view)
    if strategy is None or strategy == "SPREAD":
        last = spread.get("last") if spread is not None else None
        arg_bytes = None
        if locality and strategy is None:
            arg_bytes = {bytes.fromhex(k): v for k, v in locality.items()}
        choice = choose_node(
            shape, view, me, strategy or "DEFAULT", arg_bytes=arg_bytes, last_spread=last
        )
        if strategy and choice.node_id is not None and spread is not None:
            spread["last"] = choice.node_id
    else:
        _, node_hex, soft = strategy
        choice = choose_node(shape, view, me, NodeAffinity(bytes.fromhex(node_hex), soft))
        if choice.node_id is None:
            raise Unschedulable(choice.reason)
    if choice.node_id is None or choice.node_id == me:
        return None
    if tally is not None:
        tally.record(choice.node_id, shape)
    return choice.node_id, addresses[choice.node_id]
